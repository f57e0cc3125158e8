//! Conformance suites every provider and MFA module must pass: the contract auth-core relies on,
//! checked through a real [`AuthManager`] (so the same code paths as production run).
//!
//! A plugin's integration tests build a manager containing the plugin, prepare whatever it needs
//! (users for `trusted_networks`, a program for `command_line`), and call [`check_provider`] or
//! [`check_mfa_module`] with inputs that should and should not pass.

use auth_core::flow_engine::{FlowResponse, FlowResult};
use auth_core::{AuthManager, Credentials, LoginContext};
use serde_json::{Map, Value};

/// What a provider's conformance run needs.
#[derive(Debug, Clone)]
pub struct ProviderCase {
    /// Provider type.
    pub provider_type: String,
    /// Provider config id.
    pub provider_id: Option<String>,
    /// Request context the flows start with.
    pub context: LoginContext,
    /// Step input that must sign in (for the `init` step).
    pub good_input: Map<String, Value>,
    /// Step input that must be refused with a form error (`None` when the provider has no
    /// refusable input, e.g. a select of users).
    pub bad_input: Option<Map<String, Value>>,
    /// Whether the first sign-in yields new (unlinked) credentials that the manager turns into a
    /// user; `false` when the provider links existing users itself (`trusted_networks`).
    pub creates_users: bool,
}

fn expect_form(response: &FlowResponse, what: &str) -> Map<String, Value> {
    let json = response.to_json();
    assert_eq!(json["type"], "form", "{what}: expected a form, got {json}");
    assert!(
        json["data_schema"].is_array(),
        "{what}: a form carries a data_schema list: {json}"
    );
    for key in [
        "flow_id",
        "handler",
        "errors",
        "description_placeholders",
        "last_step",
        "preview",
        "step_id",
    ] {
        assert!(
            json.get(key).is_some(),
            "{what}: form key {key} is always present: {json}"
        );
    }
    json.as_object().cloned().unwrap_or_default()
}

async fn sign_in(manager: &AuthManager, case: &ProviderCase) -> Credentials {
    let start = manager
        .start_login_flow(
            &case.provider_type,
            case.provider_id.as_deref(),
            case.context.clone(),
        )
        .await
        .expect("starting a login flow does not fail")
        .expect("the provider accepts this context");
    assert_eq!(
        start.handler,
        serde_json::json!([case.provider_type, case.provider_id]),
        "handler is [type, id]"
    );
    let result = if matches!(start.result, FlowResult::CreateEntry { .. }) {
        start
    } else {
        let form = expect_form(&start, "first step");
        assert_eq!(form["step_id"], "init", "the first step is init");
        manager
            .login_flows()
            .configure(&start.flow_id, Some(case.good_input.clone()))
            .await
            .expect("good input is valid")
    };
    match &result.result {
        FlowResult::CreateEntry { data, .. } => manager
            .credentials_from_flow(data)
            .expect("create_entry carries credentials"),
        other => panic!("good input must sign in, got {other:?}"),
    }
}

/// Runs the provider contract: metadata, the `init` form, refusal of bad input as a form error
/// (never a Rust error), sign-in yielding credentials of this provider, first sign-in creating a
/// user (never the owner), and the second sign-in reusing the same linked credential.
pub async fn check_provider(manager: &AuthManager, case: &ProviderCase) {
    let provider = manager
        .auth_provider(&case.provider_type, case.provider_id.as_deref())
        .expect("the provider is configured in the manager");
    assert_eq!(provider.provider_type(), case.provider_type);
    assert_eq!(provider.provider_id(), case.provider_id.as_deref());
    assert!(!provider.name().is_empty(), "a provider has a display name");
    assert!(
        provider.can_start_login(&case.context),
        "the case's context may start a login"
    );
    assert!(
        manager
            .providers_for(&case.context)
            .iter()
            .any(|p| p.provider_type() == case.provider_type),
        "offered to this context"
    );

    if let Some(bad) = &case.bad_input {
        let start = manager
            .start_login_flow(
                &case.provider_type,
                case.provider_id.as_deref(),
                case.context.clone(),
            )
            .await
            .expect("starts")
            .expect("accepted");
        let refused = manager
            .login_flows()
            .configure(&start.flow_id, Some(bad.clone()))
            .await
            .expect("bad input is a value");
        let form = expect_form(&refused, "bad input");
        assert_eq!(
            form["errors"]["base"], "invalid_auth",
            "bad input is refused with invalid_auth: {form:?}"
        );
        assert!(
            manager.login_flows().context(&start.flow_id).is_some(),
            "a refused flow stays open for another try"
        );
        manager
            .login_flows()
            .abort(&start.flow_id)
            .expect("abortable");
    }

    let first = sign_in(manager, case).await;
    assert!(
        first.belongs_to(&case.provider_type, case.provider_id.as_deref()),
        "credentials of this provider"
    );
    let users_before = manager.users().len();
    let user = manager
        .get_or_create_user(&first)
        .await
        .expect("the manager can resolve the user");
    if case.creates_users {
        assert!(first.is_new, "first sign-in yields new credentials");
        assert_eq!(manager.users().len(), users_before + 1, "one user created");
        assert!(
            !user.is_owner,
            "users created at sign-in are never the owner"
        );
        assert!(user.is_active, "and active");
    }
    let second = sign_in(manager, case).await;
    assert!(
        !second.is_new,
        "the second sign-in finds the linked credential"
    );
    assert_eq!(
        second.id,
        manager
            .user_by_credentials(&second.id)
            .expect("linked")
            .credentials[0]
            .id
    );
    assert_eq!(
        manager.user_by_credentials(&second.id).map(|u| u.id),
        Some(user.id.clone()),
        "same user"
    );
    assert_eq!(
        manager.users().len(),
        users_before + usize::from(case.creates_users),
        "no duplicate user"
    );
}

/// What an MFA module's conformance run needs.
#[derive(Debug, Clone)]
pub struct MfaCase {
    /// Module id.
    pub module_id: String,
    /// A (non-system) user to enrol.
    pub user_id: String,
}

/// Runs the MFA module contract through the manager: not set up at first, the setup flow's
/// forms, enrolment via `setup_input` (computed from each form by the caller), then enabled, the
/// login step begun ([`auth_core::MfaModule::begin_login`]), an invalid login input refused,
/// and depose removing the enrolment. `setup_input` gets the setup
/// form's JSON; `login_input` gets nothing and returns a valid login input after enrolment.
pub async fn check_mfa_module(
    manager: &AuthManager,
    case: &MfaCase,
    setup_input: impl Fn(&Value) -> Map<String, Value>,
    login_input: impl Fn() -> Map<String, Value>,
    bad_login_input: Map<String, Value>,
) {
    let module = manager
        .mfa_module(&case.module_id)
        .expect("the module is configured");
    assert_eq!(module.id(), case.module_id);
    assert!(!module.name().is_empty(), "a module has a display name");
    assert!(module.max_retry() > 0, "a retry limit applies");
    assert!(
        !module.input_schema().fields().is_empty(),
        "login asks for something"
    );
    assert!(
        !module.is_user_setup(&case.user_id).await.expect("readable"),
        "not set up at first"
    );
    assert!(manager.enabled_mfa(&case.user_id).await.is_empty());

    let form = manager
        .start_mfa_setup(&case.module_id, &case.user_id)
        .await
        .expect("setup starts");
    let form_json = expect_form(&form, "setup");
    assert_eq!(
        form.handler,
        Value::String(case.module_id.clone()),
        "setup handler is the module id"
    );
    // A setup flow may have several steps (notify: choose a service, then the code sent there):
    // `setup_input` answers each form until the flow finishes.
    let mut current = form_json;
    let mut done = None;
    for _ in 0..5 {
        let next = manager
            .mfa_setup_flows()
            .configure(
                &form.flow_id,
                Some(setup_input(&Value::Object(current.clone()))),
            )
            .await
            .expect("setup input is valid");
        if next.to_json()["type"] == "form" {
            current = expect_form(&next, "setup step");
            continue;
        }
        done = Some(next);
        break;
    }
    let done = done.expect("the setup flow finishes within 5 steps");
    assert_eq!(
        done.to_json()["type"],
        "create_entry",
        "setup finishes: {}",
        done.to_json()
    );
    assert!(
        module.is_user_setup(&case.user_id).await.expect("readable"),
        "enrolled"
    );
    assert_eq!(
        manager
            .enabled_mfa(&case.user_id)
            .await
            .keys()
            .collect::<Vec<_>>(),
        [&case.module_id]
    );

    // What the login flow does when it first shows the code form (notify sends the code).
    module
        .begin_login(&case.user_id)
        .await
        .expect("the login step begins");
    assert!(
        module
            .validate(&case.user_id, &login_input())
            .await
            .expect("validates"),
        "valid login input accepted"
    );
    assert!(
        !module
            .validate(&case.user_id, &bad_login_input)
            .await
            .expect("validates"),
        "invalid input refused"
    );
    assert!(
        !module
            .validate("no-such-user", &login_input())
            .await
            .expect("validates"),
        "unknown users never pass"
    );

    manager
        .disable_user_mfa(&case.user_id, &case.module_id)
        .await
        .expect("depose");
    assert!(
        !module.is_user_setup(&case.user_id).await.expect("readable"),
        "deposed"
    );
    manager
        .disable_user_mfa(&case.user_id, &case.module_id)
        .await
        .expect("deposing twice is fine");
}

/// A manager over `config`'s `.storage` with plugins built through the registry (as a host does),
/// fast password hashing, the system clock and OS randomness. `providers` and `modules` are
/// `(type, plugin config)`; every plugin named must be linked into the test binary.
pub async fn manager_from_registry(
    config: &crate::TempConfig,
    providers: &[(&str, Value)],
    modules: &[(&str, Value)],
) -> AuthManager {
    use auth_core::registry::{
        PasswordPolicy, PluginContext, PluginSpec, find_mfa_module, find_provider,
    };
    let storage = config.storage();
    let ctx = PluginContext {
        storage: storage.clone(),
        clock: std::sync::Arc::new(auth_core::SystemClock),
        rng: std::sync::Arc::new(auth_core::OsRng),
        password_policy: PasswordPolicy::fast_for_tests(),
        trusted_proxies: Vec::new(),
    };
    let mut builder = AuthManager::builder(storage);
    for (kind, plugin_config) in providers {
        let registration =
            find_provider(kind).unwrap_or_else(|| panic!("provider {kind} is not linked"));
        let spec = PluginSpec {
            id: None,
            name: None,
            config: plugin_config.clone(),
        };
        builder =
            builder.provider((registration.build)(spec, &ctx).expect("provider config is valid"));
    }
    for (kind, plugin_config) in modules {
        let registration =
            find_mfa_module(kind).unwrap_or_else(|| panic!("MFA module {kind} is not linked"));
        let spec = PluginSpec {
            id: None,
            name: None,
            config: plugin_config.clone(),
        };
        builder =
            builder.mfa_module((registration.build)(spec, &ctx).expect("module config is valid"));
    }
    builder.build().await.expect("manager builds")
}

/// A JSON object literal as a map (panics on anything else): `object(json!({...}))`.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected an object, got {other}"),
    }
}

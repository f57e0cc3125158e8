//! The login flow: the provider's own steps, then the provider's required MFA chain (if it has
//! one), then (for users with opt-in MFA) `select_mfa_module` and `mfa`, with HA's 5-minute
//! session and retry limits. Finishing yields credentials.
//!
//! # Required chains
//!
//! A provider added with [`crate::AuthManagerBuilder::provider_with_chain`] makes every login pass
//! each module of its chain, in order:
//!
//! * a module the login is set up in ([`MfaModule::is_subject_setup`]) shows a code form with
//!   step id `mfa` (the module's input schema, like opt-in MFA) and the placeholders
//!   `mfa_module_name`, `mfa_module_id`, `chain_step` (1-based) and `chain_length`;
//! * a module the login is not set up in is enrolled inside the login: its setup flow is driven
//!   step by step as the form `mfa_setup` (the setup form's schema, errors and placeholders plus
//!   the four above); finishing the setup passes the step. With `enroll: false` the login aborts
//!   with `mfa_setup_required` instead, before any code is asked for.
//! * Enrolment needs a user. Credentials that are not linked yet (first sign-in) get their user
//!   when the flow reaches the first step that needs enrolment, i.e. after the provider and every
//!   earlier chain step accepted; that is the user the token exchange would create anyway. Nothing
//!   is issued before the whole chain is passed.
//! * Codes are checked against the session limit (5 minutes from the flow's start) and counted
//!   (wrong codes, and setup forms that come back with an error) against the same per-flow retry
//!   counter as opt-in MFA, with the current module's limit.
//!
//! After the chain, the user's opt-in modules that are not in the chain are asked as usual.
//!
//! # Recovery codes
//!
//! At every `mfa` step, a value shaped like a recovery code (see [`crate::recovery`]) in the
//! form is checked against the user's recovery codes instead of the module: one that matches is
//! used up and passes the step; one that does not counts as a wrong code.
//!
//! # Wrong codes across flows
//!
//! Code steps (opt-in and chain) also count wrong codes per account across flows
//! ([`crate::mfa_lockout`]); a locked account's code form answers `errors.base` = `mfa_locked`
//! without checking the code.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use flow_engine::{Field, Flow, FlowError, FlowResult, Schema};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::history::{SignInEvent, SignInResult};
use crate::manager::AuthManager;
use crate::mfa::{ChainEntry, MfaModule, MfaSubject};
use crate::mfa_lockout::{ERROR_MFA_LOCKED, Locked, PLACEHOLDER_LOCKED_MINUTES};
use crate::models::{Credentials, MFA_SESSION_EXPIRATION};
use crate::provider::{AuthProvider, LoginContext, ProviderLoginFlow};

/// Step id of the module picker.
pub const STEP_SELECT_MFA_MODULE: &str = "select_mfa_module";
/// Step id of the code entry (opt-in MFA and the code steps of a required chain).
pub const STEP_MFA: &str = "mfa";
/// Step id of an enrolment inside the login (a required chain's module the user is not set up in).
pub const STEP_MFA_SETUP: &str = "mfa_setup";
/// Field of the module picker.
pub const FIELD_MFA_MODULE: &str = "multi_factor_auth_module";
/// Abort reason: a required chain's module is not set up for this login and enrolment is off.
pub const ABORT_MFA_SETUP_REQUIRED: &str = "mfa_setup_required";

/// Where a required chain is.
struct ChainState {
    credentials: Credentials,
    subject: MfaSubject,
    entries: Vec<ChainEntry>,
    index: usize,
    step: ChainStep,
}

enum ChainStep {
    /// Showing the module's code form.
    Code,
    /// Driving the module's setup flow; `inner_step` is its current step id.
    Setup {
        flow: Box<dyn Flow>,
        inner_step: String,
    },
}

enum Stage {
    Provider,
    Chain(Box<ChainState>),
    SelectModule {
        credentials: Credentials,
        user_id: String,
        modules: IndexMap<String, String>,
    },
    Mfa {
        credentials: Credentials,
        user_id: String,
        module_id: String,
    },
}

/// One login flow (see the module docs).
pub struct LoginFlow {
    manager: AuthManager,
    provider: Arc<dyn AuthProvider>,
    steps: Box<dyn ProviderLoginFlow>,
    created_at: OffsetDateTime,
    stage: Stage,
    invalid_mfa_times: u32,
    /// Where the login comes from, for the sign-in history.
    ip: Option<std::net::IpAddr>,
    client_id: Option<String>,
    /// Second factors passed so far (module ids, `recovery_code`).
    mfa_used: Vec<String>,
}

impl LoginFlow {
    /// A flow for `provider` started at `created_at`.
    pub fn new(
        manager: AuthManager,
        provider: Arc<dyn AuthProvider>,
        steps: Box<dyn ProviderLoginFlow>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            manager,
            provider,
            steps,
            created_at,
            stage: Stage::Provider,
            invalid_mfa_times: 0,
            ip: None,
            client_id: None,
            mfa_used: Vec::new(),
        }
    }

    /// Takes the client's address and id from the flow's context (for the sign-in history).
    pub fn with_context(mut self, context: &LoginContext) -> Self {
        self.ip = context.ip_address;
        self.client_id = context.client_id.clone();
        self
    }

    fn event(&self, result: SignInResult) -> SignInEvent {
        SignInEvent {
            time: self.manager.clock().now(),
            result,
            ip: self.ip,
            client_id: self.client_id.clone(),
            provider_type: self.provider.provider_type().to_owned(),
            provider_id: self.provider.provider_id().map(str::to_owned),
            mfa: self.mfa_used.clone(),
        }
    }

    /// Notes an attempt of a known user in their sign-in history.
    fn record(&self, user_id: Option<&str>, result: SignInResult) {
        if let Some(user_id) = user_id {
            self.manager
                .sign_in_history()
                .record(user_id, self.event(result));
        }
    }

    /// The flow's end: noted in the history (a first sign-in waits for its user), then the entry.
    fn finish(&self, credentials: &Credentials) -> FlowResult {
        let event = self.event(SignInResult::Success);
        let history = self.manager.sign_in_history();
        match self.manager.user_by_credentials(&credentials.id) {
            Some(user) => history.record(&user.id, event),
            None => history.record_pending(&credentials.id, event),
        }
        finish(credentials)
    }

    /// A refused first step for `username`: noted in the history of the user it names, if any.
    fn record_refused_login(&self, username: &str) {
        let wanted = username.trim().to_lowercase();
        // The name as typed, or as a provider that normalises usernames stores it: two indexed
        // lookups, so that a storm of wrong passwords does not cost O(users) each.
        let mut names = vec![username];
        if wanted != username {
            names.push(&wanted);
        }
        let user = names.into_iter().find_map(|name| {
            crate::AuthAccess::credentials_with_username(&self.manager, name)
                .into_iter()
                .find(|(_, c)| {
                    c.belongs_to(self.provider.provider_type(), self.provider.provider_id())
                        && self
                            .provider
                            .credential_username(c)
                            .is_some_and(|name| name.trim().to_lowercase() == wanted)
                })
                .map(|(user_id, _)| user_id)
        });
        self.record(user.as_deref(), SignInResult::InvalidAuth);
    }

    fn chain(&self) -> &[ChainEntry] {
        self.manager
            .mfa_chain(self.provider.provider_type(), self.provider.provider_id())
    }

    fn expired(&self) -> bool {
        self.manager.clock().now() > self.created_at + MFA_SESSION_EXPIRATION
    }

    /// Counts a wrong code; `true` when the flow has used up `module`'s retries.
    fn count_failure(&mut self, module: &dyn MfaModule) -> bool {
        self.invalid_mfa_times += 1;
        let max = module.max_retry();
        max > 0 && self.invalid_mfa_times >= max
    }

    /// A recovery code typed into an MFA form instead of the module's code: `None` when the
    /// input holds nothing shaped like one (the module decides), else whether it was one of the
    /// user's unused codes (now used up).
    async fn recovery_code(
        manager: &AuthManager,
        user_id: Option<&str>,
        input: &Map<String, Value>,
    ) -> Result<Option<bool>, FlowError> {
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let Some(candidate) = input
            .values()
            .filter_map(Value::as_str)
            .find(|text| crate::recovery::looks_like_code(text))
        else {
            return Ok(None);
        };
        let used = manager
            .recovery_codes()
            .redeem(user_id, candidate, manager.clock().now())
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        if used {
            tracing::warn!(user_id, "a recovery code was used to sign in");
        }
        Ok(Some(used))
    }

    async fn after_provider(&mut self, data: Value) -> Result<FlowResult, FlowError> {
        let data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let access = self.manager.clone();
        let credentials = self
            .provider
            .get_or_create_credentials(&data, &access)
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        let entries = self.chain().to_vec();
        if entries.is_empty() {
            return self.after_chain(credentials).await;
        }
        let user_id = match credentials.is_new {
            true => None,
            false => self
                .manager
                .user_by_credentials(&credentials.id)
                .map(|u| u.id),
        };
        let subject = MfaSubject {
            user_id,
            username: self.provider.credential_username(&credentials),
        };
        // Refuse up front (before asking for any code) when a module that may not enrol here is
        // not set up. Fail closed when a module cannot tell.
        for entry in entries.iter().filter(|e| !e.enroll) {
            match entry.module.is_subject_setup(&subject).await {
                Ok(true) => {}
                Ok(false) => return Ok(FlowResult::abort(ABORT_MFA_SETUP_REQUIRED)),
                Err(error) => {
                    tracing::error!(module = entry.module.id(), %error, "cannot read MFA enrolment; login refused");
                    return Ok(FlowResult::abort("unknown_error"));
                }
            }
        }
        let state = ChainState {
            credentials,
            subject,
            entries,
            index: 0,
            step: ChainStep::Code,
        };
        self.enter_chain_step(state).await
    }

    /// Shows chain step `state.index` (code form or enrolment), or moves past the chain.
    async fn enter_chain_step(&mut self, mut state: ChainState) -> Result<FlowResult, FlowError> {
        let Some(entry) = state.entries.get(state.index).cloned() else {
            return self.after_chain(state.credentials).await;
        };
        let module = entry.module;
        let set_up = match module.is_subject_setup(&state.subject).await {
            Ok(set_up) => set_up,
            Err(error) => {
                tracing::error!(module = module.id(), %error, "cannot read MFA enrolment; login refused");
                return Ok(FlowResult::abort("unknown_error"));
            }
        };
        if set_up {
            if let Err(error) = module.begin_login_subject(&state.subject).await {
                tracing::error!(module = module.id(), %error, "cannot start the MFA step");
                return Ok(FlowResult::abort("unknown_error"));
            }
            state.step = ChainStep::Code;
            let result = chain_code_form_for(&state, None).await;
            self.stage = Stage::Chain(Box::new(state));
            return Ok(result);
        }
        if !entry.enroll {
            return Ok(FlowResult::abort(ABORT_MFA_SETUP_REQUIRED));
        }
        // Enrolment is per user: credentials not linked yet get their user now.
        let user_id = match state.subject.user_id.clone() {
            Some(user_id) => user_id,
            None => match self.manager.get_or_create_user(&state.credentials).await {
                Ok(user) => {
                    state.credentials.is_new = false;
                    state.subject.user_id = Some(user.id.clone());
                    user.id
                }
                Err(error) => {
                    tracing::error!(%error, "cannot create the user to enrol in a required MFA module");
                    return Ok(FlowResult::abort("unknown_error"));
                }
            },
        };
        let user_name = self.manager.user(&user_id).and_then(|u| u.name);
        let mut flow = match module.setup_flow(&user_id, user_name.as_deref()).await {
            Ok(flow) => flow,
            Err(error) => {
                tracing::error!(module = module.id(), %error, "cannot start the MFA setup flow");
                return Ok(FlowResult::abort("unknown_error"));
            }
        };
        let result = flow.step("init", None).await?;
        self.after_setup_step(state, flow, result).await
    }

    /// Turns a result of the module's setup flow into the login's next result.
    async fn after_setup_step(
        &mut self,
        mut state: ChainState,
        flow: Box<dyn Flow>,
        result: FlowResult,
    ) -> Result<FlowResult, FlowError> {
        match result {
            FlowResult::Form {
                step_id,
                data_schema,
                errors,
                description_placeholders,
                last_step,
                preview,
            } => {
                let mut placeholders = chain_placeholders(&state);
                placeholders.extend(description_placeholders.unwrap_or_default());
                state.step = ChainStep::Setup {
                    flow,
                    inner_step: step_id,
                };
                self.stage = Stage::Chain(Box::new(state));
                Ok(FlowResult::Form {
                    step_id: STEP_MFA_SETUP.to_owned(),
                    data_schema,
                    errors: Some(errors.unwrap_or_default()),
                    description_placeholders: Some(placeholders),
                    last_step,
                    preview,
                })
            }
            // Enrolled (the setup's own result, e.g. a TOTP secret, never leaves the flow).
            FlowResult::CreateEntry { .. } => {
                if let Some(entry) = state.entries.get(state.index) {
                    self.mfa_used.push(entry.module.id().to_owned());
                }
                state.index += 1;
                Box::pin(self.enter_chain_step(state)).await
            }
            FlowResult::Abort { reason, .. } => Ok(FlowResult::abort(reason)),
            other => {
                tracing::error!(
                    result = other.type_name(),
                    "an MFA setup flow returned a step the login flow cannot show"
                );
                Ok(FlowResult::abort("unknown_error"))
            }
        }
    }

    async fn chain_code_step(
        &mut self,
        mut state: ChainState,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        let Some(input) = input else {
            let result = chain_code_form_for(&state, None).await;
            self.stage = Stage::Chain(Box::new(state));
            return Ok(result);
        };
        if self.expired() {
            return Ok(FlowResult::abort("login_expired"));
        }
        let Some(module) = state.entries.get(state.index).map(|e| e.module.clone()) else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        let key = lockout_key(
            state.subject.user_id.as_deref(),
            Some((self.provider.as_ref(), state.subject.username.as_deref())),
        );
        let attempt = match self.manager.mfa_lockout().begin(&key) {
            Ok(attempt) => attempt,
            Err(locked) => {
                let mut result = chain_code_form(&state, Some(ERROR_MFA_LOCKED));
                self.stage = Stage::Chain(Box::new(state));
                add_locked_minutes(&mut result, locked, self.manager.clock().now());
                return Ok(result);
            }
        };
        let ok = match Self::recovery_code(&self.manager, state.subject.user_id.as_deref(), &input)
            .await?
        {
            Some(ok) => ok,
            None => module
                .validate_subject(&state.subject, &input)
                .await
                .map_err(|e| FlowError::Handler(e.to_string()))?,
        };
        if ok {
            drop(attempt);
            self.mfa_used.push(used_factor(&input, module.id()));
            state.index += 1;
            return self.enter_chain_step(state).await;
        }
        if attempt.failed() {
            tracing::warn!(
                module = module.id(),
                user_id = state.subject.user_id.as_deref(),
                "too many wrong MFA codes for this account; its code step is locked for a while"
            );
        }
        if self.count_failure(module.as_ref()) {
            self.record(state.subject.user_id.as_deref(), SignInResult::TooManyRetry);
            return Ok(FlowResult::abort("too_many_retry"));
        }
        self.record(state.subject.user_id.as_deref(), SignInResult::InvalidCode);
        let result = chain_code_form_for(&state, Some("invalid_code")).await;
        self.stage = Stage::Chain(Box::new(state));
        Ok(result)
    }

    async fn chain_setup_step(
        &mut self,
        mut state: ChainState,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        let ChainStep::Setup {
            mut flow,
            inner_step,
        } = std::mem::replace(&mut state.step, ChainStep::Code)
        else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        if input.is_some() && self.expired() {
            return Ok(FlowResult::abort("login_expired"));
        }
        let Some(module) = state.entries.get(state.index).map(|e| e.module.clone()) else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        let submitted = input.is_some();
        let result = flow.step(&inner_step, input).await?;
        let failed = matches!(
            &result,
            FlowResult::Form { errors: Some(errors), .. } if errors.contains_key("base")
        );
        if submitted && failed && self.count_failure(module.as_ref()) {
            return Ok(FlowResult::abort("too_many_retry"));
        }
        self.after_setup_step(state, flow, result).await
    }

    /// After the chain (or without one): the user's opt-in MFA, skipping modules of the chain.
    async fn after_chain(&mut self, credentials: Credentials) -> Result<FlowResult, FlowError> {
        let user = match self.provider.supports_mfa() && !credentials.is_new {
            true => self.manager.user_by_credentials(&credentials.id),
            false => None,
        };
        let Some(user) = user else {
            return Ok(self.finish(&credentials));
        };
        // Fail closed: if a module cannot tell whether the user is enrolled (its store is
        // unreadable), refuse the login rather than skip the second factor.
        let mut modules = match self.manager.try_enabled_mfa(&user.id).await {
            Ok(modules) => modules,
            Err(error) => {
                tracing::error!(%error, "cannot read MFA enrolment; login refused");
                return Ok(FlowResult::abort("unknown_error"));
            }
        };
        // A module the chain already asked for is not asked twice.
        let in_chain: HashSet<&str> = self.chain().iter().map(|e| e.module.id()).collect();
        modules.retain(|id, _| !in_chain.contains(id.as_str()));
        if modules.len() == 1 {
            let module_id = modules.keys().next().cloned().unwrap_or_default();
            self.stage = Stage::Mfa {
                credentials,
                user_id: user.id,
                module_id,
            };
            return self.show_mfa_form(None).await;
        }
        if !modules.is_empty() {
            self.stage = Stage::SelectModule {
                credentials,
                user_id: user.id,
                modules,
            };
            return Ok(self.select_form(None));
        }
        Ok(self.finish(&credentials))
    }

    fn select_form(&self, error: Option<&str>) -> FlowResult {
        let Stage::SelectModule { modules, .. } = &self.stage else {
            return FlowResult::abort("unknown_error");
        };
        let options = modules
            .iter()
            .map(|(id, name)| (id.clone(), Some(name.clone())))
            .collect();
        let schema = Schema::new(vec![Field::select(FIELD_MFA_MODULE, options)]);
        form(STEP_SELECT_MFA_MODULE, schema, base_error(error), None)
    }

    async fn show_mfa_form(&mut self, error: Option<&str>) -> Result<FlowResult, FlowError> {
        let Stage::Mfa {
            user_id, module_id, ..
        } = &self.stage
        else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        let Some(module) = self.manager.mfa_module(module_id) else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        if error.is_none() && module.begin_login(user_id).await.is_err() {
            return Ok(FlowResult::abort("unknown_error"));
        }
        let mut placeholders = module_placeholders(module.as_ref());
        match module.login_placeholders(user_id).await {
            Ok(extra) => placeholders.extend(extra),
            Err(error) => {
                tracing::error!(module = module.id(), %error, "cannot start the MFA step");
                return Ok(FlowResult::abort("unknown_error"));
            }
        }
        Ok(form(
            STEP_MFA,
            module.input_schema(),
            base_error(error),
            Some(placeholders),
        ))
    }

    async fn mfa_step(
        &mut self,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        let Some(input) = input else {
            return self.show_mfa_form(None).await;
        };
        if self.expired() {
            return Ok(FlowResult::abort("login_expired"));
        }
        let Stage::Mfa {
            credentials,
            user_id,
            module_id,
        } = &self.stage
        else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        let Some(module) = self.manager.mfa_module(module_id) else {
            return Ok(FlowResult::abort("unknown_error"));
        };
        let user_id = user_id.clone();
        let attempt = match self
            .manager
            .mfa_lockout()
            .begin(&lockout_key(Some(&user_id), None))
        {
            Ok(attempt) => attempt,
            Err(locked) => {
                let mut result = form(
                    STEP_MFA,
                    module.input_schema(),
                    base_error(Some(ERROR_MFA_LOCKED)),
                    Some(module_placeholders(module.as_ref())),
                );
                add_locked_minutes(&mut result, locked, self.manager.clock().now());
                return Ok(result);
            }
        };
        let ok = match Self::recovery_code(&self.manager, Some(&user_id), &input).await? {
            Some(ok) => ok,
            None => module
                .validate(&user_id, &input)
                .await
                .map_err(|e| FlowError::Handler(e.to_string()))?,
        };
        if ok {
            self.mfa_used.push(used_factor(&input, module.id()));
            let credentials = credentials.clone();
            return Ok(self.finish(&credentials));
        }
        if attempt.failed() {
            tracing::warn!(
                module = module.id(),
                user_id,
                "too many wrong MFA codes for this account; its code step is locked for a while"
            );
        }
        if self.count_failure(module.as_ref()) {
            self.record(Some(&user_id), SignInResult::TooManyRetry);
            return Ok(FlowResult::abort("too_many_retry"));
        }
        self.record(Some(&user_id), SignInResult::InvalidCode);
        self.show_mfa_form(Some("invalid_code")).await
    }
}

/// The key wrong MFA codes are counted under: the user, or (for a login not linked to a user
/// yet, in a required chain) the provider and username.
pub(crate) fn lockout_key(
    user_id: Option<&str>,
    login: Option<(&dyn AuthProvider, Option<&str>)>,
) -> String {
    match (user_id, login) {
        (Some(user_id), _) => format!("user:{user_id}"),
        (None, Some((provider, username))) => format!(
            "login:{}:{}:{}",
            provider.provider_type(),
            provider.provider_id().unwrap_or_default(),
            username.unwrap_or_default()
        ),
        (None, None) => "login:".to_owned(),
    }
}

/// Adds the minutes (rounded up) until codes are checked again to a locked code form.
fn add_locked_minutes(result: &mut FlowResult, locked: Locked, now: OffsetDateTime) {
    let Some(until) = locked.until else { return };
    let seconds = (until - now).whole_seconds().max(0);
    let minutes = (seconds + 59) / 60;
    if let FlowResult::Form {
        description_placeholders,
        ..
    } = result
    {
        description_placeholders
            .get_or_insert_with(Map::new)
            .insert(
                PLACEHOLDER_LOCKED_MINUTES.to_owned(),
                Value::String(minutes.max(1).to_string()),
            );
    }
}

fn base_error(error: Option<&str>) -> Map<String, Value> {
    let mut errors = Map::new();
    if let Some(error) = error {
        errors.insert("base".to_owned(), Value::String(error.to_owned()));
    }
    errors
}

fn module_placeholders(module: &dyn MfaModule) -> Map<String, Value> {
    let mut placeholders = Map::new();
    placeholders.insert(
        "mfa_module_name".to_owned(),
        Value::String(module.name().to_owned()),
    );
    placeholders.insert(
        "mfa_module_id".to_owned(),
        Value::String(module.id().to_owned()),
    );
    placeholders
}

/// The module's name and id, and which chain step of how many (1-based, as strings).
fn chain_placeholders(state: &ChainState) -> Map<String, Value> {
    let mut placeholders = match state.entries.get(state.index) {
        Some(entry) => module_placeholders(entry.module.as_ref()),
        None => Map::new(),
    };
    placeholders.insert(
        "chain_step".to_owned(),
        Value::String((state.index + 1).to_string()),
    );
    placeholders.insert(
        "chain_length".to_owned(),
        Value::String(state.entries.len().to_string()),
    );
    placeholders
}

fn chain_code_form(state: &ChainState, error: Option<&str>) -> FlowResult {
    let Some(entry) = state.entries.get(state.index) else {
        return FlowResult::abort("unknown_error");
    };
    form(
        STEP_MFA,
        entry.module.input_schema(),
        base_error(error),
        Some(chain_placeholders(state)),
    )
}

/// [`chain_code_form`] with the module's [`MfaModule::login_placeholders`] for the subject's user.
/// (Takes owned parts: a `&ChainState` held across an await would make the flow not `Send`.)
fn chain_code_form_for(
    state: &ChainState,
    error: Option<&str>,
) -> impl Future<Output = FlowResult> + Send + 'static {
    let result = chain_code_form(state, error);
    let module = state.entries.get(state.index).map(|e| e.module.clone());
    with_login_placeholders(result, module, state.subject.user_id.clone())
}

async fn with_login_placeholders(
    mut result: FlowResult,
    module: Option<Arc<dyn MfaModule>>,
    user_id: Option<String>,
) -> FlowResult {
    let (Some(module), Some(user_id)) = (module, user_id) else {
        return result;
    };
    match module.login_placeholders(&user_id).await {
        Ok(extra) => {
            if let FlowResult::Form {
                description_placeholders: Some(placeholders),
                ..
            } = &mut result
            {
                placeholders.extend(extra);
            }
            result
        }
        Err(error) => {
            tracing::error!(module = module.id(), %error, "cannot start the MFA step");
            FlowResult::abort("unknown_error")
        }
    }
}

fn form(
    step_id: &str,
    schema: Schema,
    errors: Map<String, Value>,
    placeholders: Option<Map<String, Value>>,
) -> FlowResult {
    FlowResult::Form {
        step_id: step_id.to_owned(),
        data_schema: Some(schema),
        errors: Some(errors),
        description_placeholders: placeholders,
        last_step: None,
        preview: None,
    }
}

/// What passed an MFA step: a recovery code, or the module.
fn used_factor(input: &Map<String, Value>, module_id: &str) -> String {
    let recovery = input
        .values()
        .filter_map(Value::as_str)
        .any(crate::recovery::looks_like_code);
    if recovery {
        "recovery_code".to_owned()
    } else {
        module_id.to_owned()
    }
}

fn finish(credentials: &Credentials) -> FlowResult {
    FlowResult::CreateEntry {
        title: None,
        data: credentials_to_flow_data(credentials),
        description: None,
        description_placeholders: None,
        context: json!({}),
    }
}

/// Credentials as carried in a login flow's `create_entry` data.
pub fn credentials_to_flow_data(credentials: &Credentials) -> Value {
    json!({
        "credentials": {
            "id": credentials.id,
            "auth_provider_type": credentials.auth_provider_type,
            "auth_provider_id": credentials.auth_provider_id,
            "data": credentials.data,
            "is_new": credentials.is_new,
        }
    })
}

/// The credentials in a finished login flow's `create_entry` data.
pub fn credentials_from_flow_data(data: &Value) -> Option<Credentials> {
    let c = data.get("credentials")?;
    Some(Credentials {
        id: c.get("id")?.as_str()?.to_owned(),
        auth_provider_type: c.get("auth_provider_type")?.as_str()?.to_owned(),
        auth_provider_id: c
            .get("auth_provider_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        data: c.get("data")?.as_object()?.clone(),
        is_new: c.get("is_new")?.as_bool()?,
    })
}

#[async_trait]
impl Flow for LoginFlow {
    fn bind_flow_id(&mut self, flow_id: &str) {
        self.steps.bind_flow_id(flow_id);
    }

    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        // Which chain step is showing, decided before any await (the stage holds a `dyn Flow`,
        // which is `Send` but not `Sync`).
        let chain_step = match &self.stage {
            Stage::Chain(state) => Some(match state.step {
                ChainStep::Code => STEP_MFA,
                ChainStep::Setup { .. } => STEP_MFA_SETUP,
            }),
            _ => None,
        };
        if let Some(current) = chain_step {
            if current != step_id {
                return Err(FlowError::UnknownStep(step_id.to_owned()));
            }
            let Stage::Chain(state) = std::mem::replace(&mut self.stage, Stage::Provider) else {
                return Ok(FlowResult::abort("unknown_error"));
            };
            return match current {
                STEP_MFA => self.chain_code_step(*state, input).await,
                _ => self.chain_setup_step(*state, input).await,
            };
        }
        match (step_id, &self.stage) {
            (STEP_SELECT_MFA_MODULE, Stage::SelectModule { .. }) => {
                let Some(input) = input else {
                    return Ok(self.select_form(None));
                };
                let chosen = input
                    .get(FIELD_MFA_MODULE)
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let Stage::SelectModule {
                    credentials,
                    user_id,
                    modules,
                } = std::mem::replace(&mut self.stage, Stage::Provider)
                else {
                    return Ok(FlowResult::abort("unknown_error"));
                };
                match chosen
                    .filter(|id| modules.contains_key(id) && self.manager.mfa_module(id).is_some())
                {
                    Some(module_id) => {
                        self.stage = Stage::Mfa {
                            credentials,
                            user_id,
                            module_id,
                        };
                        self.show_mfa_form(None).await
                    }
                    None => {
                        self.stage = Stage::SelectModule {
                            credentials,
                            user_id,
                            modules,
                        };
                        Ok(self.select_form(Some("invalid_auth_module")))
                    }
                }
            }
            (STEP_MFA, Stage::Mfa { .. }) => self.mfa_step(input).await,
            (_, Stage::Provider) => {
                let username = input
                    .as_ref()
                    .and_then(|i| i.get("username"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let result = self
                    .steps
                    .step(step_id, input)
                    .await
                    .map_err(|e| FlowError::Handler(e.to_string()))?;
                match result {
                    FlowResult::CreateEntry { data, .. } => self.after_provider(data).await,
                    other => {
                        let refused = matches!(
                            &other,
                            FlowResult::Form { errors: Some(errors), .. }
                                if errors.get("base").and_then(Value::as_str) == Some("invalid_auth")
                        );
                        if let (true, Some(username)) = (refused, username) {
                            self.record_refused_login(&username);
                        }
                        Ok(other)
                    }
                }
            }
            (other, _) => Err(FlowError::UnknownStep(other.to_owned())),
        }
    }
}

//! `example_fork`: an auth provider that lives outside the hass-auth workspace's `crates/`,
//! forked from the shape of `provider-insecure-example` (see `docs/writing-a-provider.md`).
//!
//! It signs in a fixed list of accounts written in the YAML itself. Like `insecure_example`
//! it keeps plaintext passwords in the configuration, so it is meant for demos and tests.
//!
//! ```yaml
//! homeassistant:
//!   auth_providers:
//!     - type: example_fork
//!       name: Demo accounts        # optional, default "Example Fork"
//!       id: demo                   # optional
//!       accounts:
//!         - login: kiosk
//!           secret: !secret kiosk_password
//!           display_name: Kiosk    # optional, default: the login
//! ```
//!
//! A host links it by depending on this crate and naming it once:
//! `use provider_example_fork as _;` (otherwise the linker drops the registration).

#![forbid(unsafe_code)]

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{FlowResult, Schema};
use auth_core::{
    AuthAccess, AuthProvider, Credentials, LoginContext, PluginConfigError, PluginContext,
    PluginIdentity, PluginSpec, ProviderError, ProviderLoginFlow, UserMeta,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The config `type` of this provider.
pub const PROVIDER_TYPE: &str = "example_fork";
/// Display name when `name` is not configured.
pub const DEFAULT_NAME: &str = "Example Fork";

/// The provider's own keys (everything in the entry except `type`, `name` and `id`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The accounts that may sign in.
    pub accounts: Vec<Account>,
}

/// One account.
#[derive(Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Login name, compared exactly.
    pub login: String,
    /// Password, compared in constant time.
    pub secret: String,
    /// Name of the user created at first sign-in (default: the login).
    #[serde(default)]
    pub display_name: Option<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("login", &self.login)
            .field("secret", &"<redacted>")
            .field("display_name", &self.display_name)
            .finish()
    }
}

/// The `example_fork` provider.
#[derive(Debug)]
pub struct ExampleForkProvider {
    identity: PluginIdentity,
    accounts: Arc<Vec<Account>>,
}

impl ExampleForkProvider {
    /// Builds the provider from its config and the entry's common keys.
    ///
    /// # Errors
    ///
    /// Two accounts with the same login.
    pub fn new(config: Config, spec: &PluginSpec) -> Result<Self, PluginConfigError> {
        for (i, account) in config.accounts.iter().enumerate() {
            if config.accounts[..i]
                .iter()
                .any(|a| a.login == account.login)
            {
                return Err(PluginConfigError(format!(
                    "accounts: login '{}' is listed twice",
                    account.login
                )));
            }
        }
        Ok(Self {
            identity: PluginIdentity::from_spec(PROVIDER_TYPE, DEFAULT_NAME, spec),
            accounts: Arc::new(config.accounts),
        })
    }

    fn account(&self, login: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.login == login)
    }
}

/// Compares two strings without stopping at the first difference.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The `init` form: `username` and `password`.
fn login_schema() -> Schema {
    auth_core::provider::username_password_schema()
}

struct LoginSteps {
    accounts: Arc<Vec<Account>>,
}

#[async_trait]
impl ProviderLoginFlow for LoginSteps {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, ProviderError> {
        if step_id != "init" {
            return Err(ProviderError::Failed(format!("unknown step {step_id}")));
        }
        let mut errors = Map::new();
        if let Some(input) = input {
            let login = input.get("username").and_then(Value::as_str);
            let secret = input.get("password").and_then(Value::as_str);
            if let (Some(login), Some(secret)) = (login, secret) {
                // Check every account so timing does not tell which logins exist.
                let mut found = false;
                for account in self.accounts.iter() {
                    found |=
                        same_secret(&account.login, login) & same_secret(&account.secret, secret);
                }
                if found {
                    return Ok(FlowResult::create_entry(json!({ "username": login })));
                }
            }
            errors.insert("base".to_owned(), json!("invalid_auth"));
        }
        Ok(FlowResult::form("init", Some(login_schema())).with_errors(errors))
    }
}

#[async_trait]
impl AuthProvider for ExampleForkProvider {
    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    async fn login_flow(
        &self,
        _context: &LoginContext,
        _auth: Arc<dyn AuthAccess>,
    ) -> Result<Box<dyn ProviderLoginFlow>, ProviderError> {
        Ok(Box::new(LoginSteps {
            accounts: self.accounts.clone(),
        }))
    }

    async fn get_or_create_credentials(
        &self,
        data: &Map<String, Value>,
        auth: &dyn AuthAccess,
    ) -> Result<Credentials, ProviderError> {
        let login = data
            .get("username")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::InvalidUser("no username in flow data".to_owned()))?;
        if self.account(login).is_none() {
            return Err(ProviderError::InvalidUser(format!("unknown login {login}")));
        }
        auth_core::provider::credentials_by_exact_username(
            auth,
            PROVIDER_TYPE,
            self.provider_id(),
            data,
        )
    }

    async fn user_meta_for_credentials(
        &self,
        credentials: &Credentials,
    ) -> Result<UserMeta, ProviderError> {
        let login = credentials.data_str("username").unwrap_or_default();
        let name = self
            .account(login)
            .and_then(|a| a.display_name.clone())
            .unwrap_or_else(|| login.to_owned());
        Ok(UserMeta {
            name: Some(name),
            is_active: true,
            group: None,
            local_only: None,
        })
    }
}

auth_core::register_provider! {
    kind: "example_fork",
    default_name: "Example Fork",
    config: Config,
    build: |config: Config, spec: PluginSpec, _ctx: &PluginContext| {
        ExampleForkProvider::new(config, &spec).map(|p| Arc::new(p) as Arc<dyn AuthProvider>)
    },
    testing_only: true,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_secret_compares_whole_strings() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
        assert!(same_secret("", ""));
    }

    #[test]
    fn duplicate_logins_are_refused() {
        let config = Config {
            accounts: vec![
                Account {
                    login: "a".into(),
                    secret: "1".into(),
                    display_name: None,
                },
                Account {
                    login: "a".into(),
                    secret: "2".into(),
                    display_name: None,
                },
            ],
        };
        let spec = PluginSpec {
            id: None,
            name: None,
            config: Value::Null,
        };
        let err = ExampleForkProvider::new(config, &spec).unwrap_err();
        assert_eq!(err.0, "accounts: login 'a' is listed twice");
    }

    #[test]
    fn debug_hides_secrets() {
        let account = Account {
            login: "kiosk".into(),
            secret: "hunter2".into(),
            display_name: None,
        };
        assert!(!format!("{account:?}").contains("hunter2"));
    }
}

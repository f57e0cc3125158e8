//! MFA enrolments, recovery codes, the code lockout and admin resets.

use std::sync::Arc;

use flow_engine::{FlowManager, FlowResponse};
use indexmap::IndexMap;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error::AuthError;
use crate::mfa::MfaModule;
use crate::mfa_lockout::MfaLockout;
use crate::models::TokenType;
use crate::recovery::RecoveryCodes;

use super::AuthManager;

impl AuthManager {
    // ----- MFA -----

    /// Enabled MFA modules of a user: module id -> name, in config order.
    pub async fn enabled_mfa(&self, user_id: &str) -> IndexMap<String, String> {
        let mut out = IndexMap::new();
        for module in self.inner.modules.values() {
            match module.is_user_setup(user_id).await {
                Ok(true) => {
                    out.insert(module.id().to_owned(), module.name().to_owned());
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(module = module.id(), %error, "cannot read MFA enrolment")
                }
            }
        }
        out
    }

    /// Like [`AuthManager::enabled_mfa`], but a module that cannot tell (e.g. its store cannot be
    /// read) is an error instead of "not enabled"; the login flow uses this to fail closed.
    pub async fn try_enabled_mfa(
        &self,
        user_id: &str,
    ) -> Result<IndexMap<String, String>, AuthError> {
        let mut out = IndexMap::new();
        for module in self.inner.modules.values() {
            if module.is_user_setup(user_id).await? {
                out.insert(module.id().to_owned(), module.name().to_owned());
            }
        }
        Ok(out)
    }

    pub(super) fn mfa_target(
        &self,
        user_id: &str,
        module_id: &str,
        verb: &str,
    ) -> Result<Arc<dyn MfaModule>, AuthError> {
        let user = self.user(user_id).ok_or(AuthError::UserNotFound)?;
        if user.system_generated {
            return Err(AuthError::Invalid(format!(
                "System generated users cannot {verb} multi-factor auth module."
            )));
        }
        self.mfa_module(module_id)
            .ok_or_else(|| AuthError::UnknownMfaModule(module_id.to_owned()))
    }

    /// Enrols a user in a module directly (the module's setup-user routine).
    pub async fn enable_user_mfa(
        &self,
        user_id: &str,
        module_id: &str,
        data: &Map<String, Value>,
    ) -> Result<Value, AuthError> {
        let module = self.mfa_target(user_id, module_id, "enable")?;
        Ok(module.setup_user(user_id, data).await?)
    }

    /// The name of a provider the user signs in with whose required chain (`modules:`) holds
    /// module `module_id`, if any: such an enrolment is not the user's to drop.
    pub fn mfa_required_by(&self, user_id: &str, module_id: &str) -> Option<String> {
        let user = self.user(user_id)?;
        user.credentials.iter().find_map(|c| {
            let chain = self.mfa_chain(&c.auth_provider_type, c.auth_provider_id.as_deref());
            chain
                .iter()
                .any(|entry| entry.module.id() == module_id)
                .then(|| {
                    self.auth_provider(&c.auth_provider_type, c.auth_provider_id.as_deref())
                        .map_or_else(|| c.auth_provider_type.clone(), |p| p.name().to_owned())
                })
        })
    }

    /// Removes the user's own enrolment in a module, as the user asked: refused with
    /// [`AuthError::MfaRequired`] when a provider the user signs in with requires the module
    /// (also when the module is the opt-in module of the same id). An administrator resets a
    /// required enrolment with [`Self::disable_user_mfa`].
    pub async fn disable_own_mfa(&self, user_id: &str, module_id: &str) -> Result<(), AuthError> {
        if let Some(provider) = self.mfa_required_by(user_id, module_id) {
            return Err(AuthError::MfaRequired {
                module_id: module_id.to_owned(),
                provider,
            });
        }
        self.disable_user_mfa(user_id, module_id).await
    }

    /// Removes a user's enrolment in a module (an administrator's reset: no chain check); with
    /// the last module go their recovery codes.
    pub async fn disable_user_mfa(&self, user_id: &str, module_id: &str) -> Result<(), AuthError> {
        let module = self.mfa_target(user_id, module_id, "disable")?;
        module.depose_user(user_id).await?;
        if self.user_mfa_modules(user_id).await?.is_empty() {
            self.inner.recovery.remove_user(user_id).await?;
        }
        Ok(())
    }

    /// Every module a user is set up in, opt-in or only in a provider's required chain (each
    /// instance once).
    pub(super) async fn user_mfa_modules(
        &self,
        user_id: &str,
    ) -> Result<Vec<Arc<dyn MfaModule>>, AuthError> {
        let mut out: Vec<Arc<dyn MfaModule>> = Vec::new();
        let chained = self.inner.chains.values().flatten().map(|e| &e.module);
        for module in self.inner.modules.values().chain(chained) {
            if !out.iter().any(|m| m.id() == module.id()) && module.is_user_setup(user_id).await? {
                out.push(module.clone());
            }
        }
        Ok(out)
    }

    /// The recovery codes of every user.
    pub fn recovery_codes(&self) -> &RecoveryCodes {
        &self.inner.recovery
    }

    /// Makes ten new recovery codes for a user with MFA (replacing the old ones) and returns
    /// them; they are never shown again.
    pub async fn generate_recovery_codes(&self, user_id: &str) -> Result<Vec<String>, AuthError> {
        let user = self.user(user_id).ok_or(AuthError::UserNotFound)?;
        if user.system_generated {
            return Err(AuthError::Invalid(
                "System generated users cannot have recovery codes.".to_owned(),
            ));
        }
        if self.user_mfa_modules(user_id).await?.is_empty() {
            return Err(AuthError::Invalid(
                "Recovery codes need multi-factor authentication: enable a module first."
                    .to_owned(),
            ));
        }
        self.inner
            .recovery
            .generate(user_id, self.inner.rng.as_ref(), self.now())
            .await
    }

    /// Whether `code` is a current second factor of the user: one of their unused recovery codes
    /// (used up by this check), or a code one of their modules accepts (typed into the module's
    /// first input field). `false` when they have no second factor.
    pub async fn verify_second_factor(&self, user_id: &str, code: &str) -> Result<bool, AuthError> {
        if crate::recovery::looks_like_code(code) {
            return self.inner.recovery.redeem(user_id, code, self.now()).await;
        }
        for module in self.user_mfa_modules(user_id).await? {
            let Some(field) = module
                .input_schema()
                .fields()
                .first()
                .map(|f| f.name.clone())
            else {
                continue;
            };
            let mut input = Map::new();
            input.insert(field, Value::String(code.to_owned()));
            if module.validate(user_id, &input).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// An administrator's reset of a user's second factors (lost device): every MFA enrolment
    /// (or only module `only`'s, required by a provider or not) is removed, the recovery codes
    /// too when no module is left, and the user's sign-in sessions (refresh tokens of type
    /// `normal`) are revoked; long-lived tokens stay. Returns the ids of the modules that were
    /// reset. Who may ask is the caller's business.
    pub async fn reset_user_mfa(
        &self,
        user_id: &str,
        only: Option<&str>,
    ) -> Result<Vec<String>, AuthError> {
        let user = self.user(user_id).ok_or(AuthError::UserNotFound)?;
        if user.system_generated {
            return Err(AuthError::Invalid(
                "System generated users have no multi-factor auth modules.".to_owned(),
            ));
        }
        if let Some(only) = only
            && self.mfa_module(only).is_none()
            && !self
                .inner
                .chains
                .values()
                .flatten()
                .any(|e| e.module.id() == only)
        {
            return Err(AuthError::UnknownMfaModule(only.to_owned()));
        }
        let mut reset = Vec::new();
        for module in self.user_mfa_modules(user_id).await? {
            if only.is_some_and(|only| only != module.id()) {
                continue;
            }
            module.depose_user(user_id).await?;
            reset.push(module.id().to_owned());
        }
        if self.user_mfa_modules(user_id).await?.is_empty() {
            self.inner.recovery.remove_user(user_id).await?;
        }
        for token in self.refresh_tokens_of(user_id) {
            if token.token_type == TokenType::Normal {
                self.remove_refresh_token(&token.id).await?;
            }
        }
        tracing::warn!(user_id, modules = ?reset, "multi-factor authentication reset");
        Ok(reset)
    }

    /// Starts an MFA setup flow for `user_id` in module `module_id` (a user holds at most
    /// `max_flows_per_owner` setup flows; the next drops their oldest).
    pub async fn start_mfa_setup(
        &self,
        module_id: &str,
        user_id: &str,
    ) -> Result<FlowResponse, AuthError> {
        let module = self.mfa_target(user_id, module_id, "enable")?;
        let name = self.user(user_id).and_then(|u| u.name);
        let mut flow = module.setup_flow(user_id, name.as_deref()).await?;
        // Changing an enrolment (a new TOTP secret, one more passkey) needs the current second
        // factor first.
        if module.is_user_setup(user_id).await? {
            flow = Box::new(crate::mfa_setup::ReauthFirst::new(
                module.clone(),
                user_id.to_owned(),
                flow,
            ));
        }
        Ok(self
            .inner
            .mfa_setup_flows
            .start_owned(
                Some(user_id),
                Value::String(module_id.to_owned()),
                user_id.to_owned(),
                flow,
            )
            .await?)
    }

    /// Wrong-code counters of MFA logins (see [`crate::mfa_lockout`]).
    pub(crate) fn mfa_lockout(&self) -> &MfaLockout {
        &self.inner.mfa_lockout
    }

    /// Until when `user_id`'s MFA code step refuses codes after too many wrong ones (`None`
    /// when it does not).
    pub fn mfa_locked_until(&self, user_id: &str) -> Option<OffsetDateTime> {
        self.inner
            .mfa_lockout
            .locked_until(&crate::login_flow::lockout_key(Some(user_id), None))
    }

    /// How many accounts have wrong MFA codes counted (bounded by
    /// [`crate::MfaLockoutPolicy::max_tracked`]).
    pub fn mfa_lockout_tracked(&self) -> usize {
        self.inner.mfa_lockout.tracked()
    }

    /// The MFA setup flows table.
    pub fn mfa_setup_flows(&self) -> &FlowManager<String> {
        &self.inner.mfa_setup_flows
    }
}

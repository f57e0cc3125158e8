//! `auth/mfa_credentials` and `auth/mfa_credentials/remove` against modules that keep no named
//! keys (the listing and removal of real passkeys is tested in Chromium: auth-server `passkeys`).

use serde_json::json;

use super::{Ws, error};
use crate::harness::onboarded;

#[tokio::test]
async fn modules_without_named_keys_and_unknown_modules_are_refused_by_name() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    assert_eq!(
        ws.err(json!({"type": "auth/mfa_credentials", "mfa_module_id": "totp"}))
            .await,
        error("not_supported", "MFA module totp does not keep named keys")
    );
    assert_eq!(
        ws.err(json!({"type": "auth/mfa_credentials/remove", "mfa_module_id": "totp", "credential_id": "x"}))
            .await,
        error("not_supported", "MFA module totp does not keep named keys")
    );
    assert_eq!(
        ws.err(json!({"type": "auth/mfa_credentials", "mfa_module_id": "sms"}))
            .await,
        error("no_module", "MFA module sms is not found")
    );
    // Both fields are required and must be strings.
    let missing = ws
        .err(json!({"type": "auth/mfa_credentials/remove", "mfa_module_id": "totp"}))
        .await;
    assert_eq!(missing["code"], "invalid_format", "{missing}");
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("credential_id"),
        "{missing}"
    );
    let wrong = ws
        .err(json!({"type": "auth/mfa_credentials", "mfa_module_id": 3}))
        .await;
    assert_eq!(wrong["code"], "invalid_format", "{wrong}");
}

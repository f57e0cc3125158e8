//! The enrolment flow (websocket `auth/setup_mfa`): show a new secret as text, URL and QR code,
//! then confirm it with the code the user's app shows.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::flow_engine::{Field, Flow, FlowError, FlowResult, Schema};
use qrcode::QrCode;
use qrcode::render::svg;
use serde_json::{Map, Value, json};

use crate::Inner;
use crate::otp::{self, Generator};

/// Issuer shown by authenticator apps.
pub const ISSUER: &str = "Home Assistant";
/// Placeholder `google_authenticator_url`.
pub const GOOGLE_AUTHENTICATOR_URL: &str = "https://support.google.com/accounts/answer/1066447";
/// Placeholder `authy_url`.
pub const AUTHY_URL: &str = "https://authy.com/";
/// Form error shown after a wrong confirmation code.
pub const ERROR_INVALID_CODE: &str = "invalid_code";

/// The `otpauth://` provisioning URI for `secret`, labelled with the user's display name.
///
/// Like Home Assistant (pyotp): the label is `Home%20Assistant:<name>`, the name percent-encoded
/// with `/` left as is, and a user without a name is labelled `None`.
///
/// ```
/// let url = mfa_totp::provisioning_uri("5O4XYKQRNBRTVGTLJOBAVBXMBTRGIUGF", Some("Jörg Straße"));
/// assert_eq!(
///     url,
///     "otpauth://totp/Home%20Assistant:J%C3%B6rg%20Stra%C3%9Fe?secret=5O4XYKQRNBRTVGTLJOBAVBXMBTRGIUGF&issuer=Home%20Assistant"
/// );
/// ```
pub fn provisioning_uri(secret: &str, user_name: Option<&str>) -> String {
    let issuer = percent_encode(ISSUER, b"/");
    format!(
        "otpauth://totp/{issuer}:{name}?secret={secret}&issuer={query_issuer}",
        name = percent_encode(user_name.unwrap_or("None"), b"/"),
        secret = percent_encode(secret, b""),
        query_issuer = percent_encode(ISSUER, b""),
    )
}

/// Python's `urllib.parse.quote`: UTF-8 bytes, unreserved characters and `safe` kept, the rest
/// `%XX` with upper-case hex.
fn percent_encode(text: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~".contains(&byte) || safe.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `url` as an inline SVG QR code: no XML declaration, no newlines, 4 pixels per module.
///
/// Returns an empty string if the URL is too long for a QR code (only possible with absurdly
/// long display names); the secret and URL placeholders still let the user enrol.
pub fn qr_code_svg(url: &str) -> String {
    let Ok(code) = QrCode::new(url.as_bytes()) else {
        return String::new();
    };
    let image = code
        .render::<svg::Color<'_>>()
        .module_dimensions(4, 4)
        .quiet_zone(true)
        .build();
    let image = match image.find("<svg") {
        Some(start) => &image[start..],
        None => image.as_str(),
    };
    image.replace(['\n', '\r'], "")
}

/// The secret being enrolled and what the form shows for it.
struct Pending {
    secret: String,
    placeholders: Map<String, Value>,
}

/// The setup flow of one user (single step `init`).
pub(crate) struct SetupFlow {
    inner: Arc<Inner>,
    user_id: String,
    user_name: Option<String>,
    pending: Option<Pending>,
}

impl SetupFlow {
    pub(crate) fn new(inner: Arc<Inner>, user_id: &str, user_name: Option<&str>) -> Self {
        Self {
            inner,
            user_id: user_id.to_owned(),
            user_name: user_name.map(str::to_owned),
            pending: None,
        }
    }

    fn new_pending(&self) -> Pending {
        let secret = otp::new_secret(self.inner.rng.as_ref());
        let url = provisioning_uri(&secret, self.user_name.as_deref());
        let qr_code = qr_code_svg(&url);
        // Home Assistant's key order: code, url, qr_code, google_authenticator_url, authy_url.
        let mut placeholders = Map::new();
        placeholders.insert("code".to_owned(), json!(secret));
        placeholders.insert("url".to_owned(), json!(url));
        placeholders.insert("qr_code".to_owned(), json!(qr_code));
        placeholders.insert(
            "google_authenticator_url".to_owned(),
            json!(GOOGLE_AUTHENTICATOR_URL),
        );
        placeholders.insert("authy_url".to_owned(), json!(AUTHY_URL));
        Pending {
            secret,
            placeholders,
        }
    }

    fn form(&self, error: Option<&str>) -> FlowResult {
        let mut errors = Map::new();
        if let Some(error) = error {
            errors.insert("base".to_owned(), json!(error));
        }
        let placeholders = self
            .pending
            .as_ref()
            .map(|p| p.placeholders.clone())
            .unwrap_or_default();
        FlowResult::form("init", Some(code_schema()))
            .with_errors(errors)
            .with_placeholders(placeholders)
    }
}

/// The one field asked for, at setup and at login.
pub(crate) fn code_schema() -> Schema {
    Schema::new(vec![Field::string("code").required()])
}

#[async_trait]
impl Flow for SetupFlow {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        if step_id != "init" {
            return Err(FlowError::UnknownStep(step_id.to_owned()));
        }
        let input = input.filter(|i| !i.is_empty());
        let (Some(input), Some(pending)) = (input, &self.pending) else {
            self.pending = Some(self.new_pending());
            return Ok(self.form(None));
        };
        let code = input.get("code").and_then(Value::as_str).unwrap_or("");
        let enrolled = self
            .inner
            .enrol_with_code(&self.user_id, &pending.secret, code)
            .await
            .map_err(|e| FlowError::Handler(e.to_string()))?;
        if !enrolled {
            return Ok(self.form(Some(ERROR_INVALID_CODE)));
        }
        Ok(FlowResult::create_entry(
            json!({ "result": pending.secret }),
        ))
    }
}

/// Whether `code` is the code of `secret` for exactly `counter` (setup accepts no other step).
pub(crate) fn confirms(secret: &[u8], code: &str, counter: u64) -> bool {
    let submitted = otp::normalize(code);
    !Generator::new(secret)
        .matching(&submitted, [counter])
        .is_empty()
}

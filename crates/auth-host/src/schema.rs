//! The JSON Schema of the `configuration.yaml` subset hass-auth reads, generated from the registry.

use auth_core::registry::{mfa_registrations, provider_registrations};
use serde_json::{Map, Value as Json, json};

use crate::plugins::PluginRole;

/// JSON Schema (draft 2020-12) of the configuration this build reads: `homeassistant:
/// auth_providers` / `auth_mfa_modules` (a `oneOf` over every linked plugin type) and `http:`.
///
/// ```
/// let schema = serde_json::to_value(auth_host::config_schema()).unwrap();
/// let text = schema.to_string();
/// assert!(text.contains("auth_providers") && text.contains("auth_mfa_modules"));
/// ```
pub fn config_schema() -> schemars::Schema {
    config_schema_filtered(|_, _| true)
}

/// Like [`config_schema`], restricted to the plugin types for which `include(role, kind)` holds.
pub fn config_schema_filtered(include: impl Fn(PluginRole, &str) -> bool) -> schemars::Schema {
    let mut defs = Map::new();
    let providers: Vec<Json> = provider_registrations()
        .into_iter()
        .filter(|r| include(PluginRole::Provider, r.kind))
        .map(|r| {
            let mut variant = plugin_variant(
                "provider",
                r.kind,
                r.default_name,
                r.testing_only,
                (r.config_schema)(),
                &mut defs,
            );
            add_property(
                &mut variant,
                "modules",
                list_or_one(
                    "mfa_chain_module",
                    "hass-auth: MFA modules every login through this provider must pass, in this order, before the user's own opt-in MFA. Same types as auth_mfa_modules; an id (default: the type) that is configured there is that module.",
                ),
            );
            variant
        })
        .collect();
    let modules: Vec<Json> = mfa_registrations()
        .into_iter()
        .filter(|r| include(PluginRole::MfaModule, r.kind))
        .map(|r| {
            plugin_variant(
                "mfa",
                r.kind,
                r.default_name,
                r.testing_only,
                (r.config_schema)(),
                &mut defs,
            )
        })
        .collect();
    let chain_modules: Vec<Json> = modules
        .iter()
        .cloned()
        .map(|mut variant| {
            add_property(
                &mut variant,
                "enroll",
                json!({
                    "type": "boolean",
                    "default": true,
                    "description": "Whether a login not set up in this module enrols in it during the login (true) or is refused with mfa_setup_required (false)."
                }),
            );
            variant
        })
        .collect();
    let one_of = |variants: Vec<Json>, description: &str| -> Json {
        if variants.is_empty() {
            json!({ "description": description, "not": {} })
        } else {
            json!({ "description": description, "oneOf": variants })
        }
    };
    let mut all_defs = Map::new();
    all_defs.insert(
        "auth_provider".to_owned(),
        one_of(providers, "One auth provider; `type` selects which."),
    );
    all_defs.insert(
        "mfa_module".to_owned(),
        one_of(modules, "One MFA module; `type` selects which."),
    );
    all_defs.insert(
        "mfa_chain_module".to_owned(),
        one_of(
            chain_modules,
            "One module of a provider's required MFA chain: an MFA module entry, plus `enroll`.",
        ),
    );
    all_defs.insert("http".to_owned(), http_schema());
    all_defs.extend(defs);
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hass-auth configuration.yaml",
        "description": "The parts of Home Assistant's configuration.yaml that hass-auth reads. Other sections are ignored. Values may use !secret, !env_var and !include.",
        "type": "object",
        "properties": {
            "homeassistant": {
                "description": "Home Assistant's core section; hass-auth reads only the auth keys.",
                "type": ["object", "null"],
                "properties": {
                    "auth_providers": list_or_one(
                        "auth_provider",
                        "Auth providers in login-screen order. Absent: [{type: homeassistant}]. Empty: nobody can log in. Providers need unique (type, id) pairs."
                    ),
                    "auth_mfa_modules": list_or_one(
                        "mfa_module",
                        "MFA modules. Absent: [{type: totp, id: totp, name: Authenticator app}]. Ids (default: the type) must be unique."
                    )
                }
            },
            "http": { "$ref": "#/$defs/http" }
        },
        "$defs": all_defs
    });
    match schema {
        Json::Object(map) => schemars::Schema::from(map),
        _ => schemars::Schema::default(),
    }
}

/// A list of `$defs/<item>`, a single one, or nothing.
fn list_or_one(item: &str, description: &str) -> Json {
    json!({
        "description": description,
        "anyOf": [
            { "type": "array", "items": { "$ref": format!("#/$defs/{item}") } },
            { "$ref": format!("#/$defs/{item}") },
            { "type": "null" }
        ]
    })
}

/// Adds a property to a plugin variant (after the plugin's own).
fn add_property(variant: &mut Json, name: &str, schema: Json) {
    if let Some(Json::Object(properties)) = variant.get_mut("properties") {
        properties.insert(name.to_owned(), schema);
    }
}

/// One plugin type: the common keys (`type`, `name`, `id`) plus the plugin's own schema, with
/// the plugin's `$defs` lifted to the root under a prefix.
fn plugin_variant(
    role: &str,
    kind: &str,
    default_name: &str,
    testing_only: bool,
    schema: schemars::Schema,
    defs: &mut Map<String, Json>,
) -> Json {
    let prefix = format!("{role}_{kind}_");
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        object.remove("$schema");
        for key in ["$defs", "definitions"] {
            if let Some(Json::Object(lifted)) = object.remove(key) {
                for (name, mut def) in lifted {
                    rewrite_refs(&mut def, &prefix);
                    defs.insert(format!("{prefix}{name}"), def);
                }
            }
        }
    }
    rewrite_refs(&mut value, &prefix);
    let own = match value {
        Json::Object(object)
            if object.get("type") == Some(&json!("object"))
                || object.contains_key("properties") =>
        {
            object
        }
        _ => Map::new(),
    };
    let mut properties = Map::new();
    properties.insert("type".to_owned(), json!({ "const": kind }));
    properties.insert(
        "name".to_owned(),
        json!({ "type": "string", "description": format!("Display name (default: {default_name}).") }),
    );
    properties.insert(
        "id".to_owned(),
        json!({ "type": "string", "description": "Distinguishes several entries of the same type." }),
    );
    if let Some(Json::Object(theirs)) = own.get("properties") {
        for (k, v) in theirs {
            properties.insert(k.clone(), v.clone());
        }
    }
    let mut required = vec![json!("type")];
    if let Some(Json::Array(theirs)) = own.get("required") {
        required.extend(theirs.iter().cloned());
    }
    let mut out = Map::new();
    out.insert("title".to_owned(), json!(kind));
    let mut description = default_name.to_owned();
    if testing_only {
        description.push_str(" (for testing only)");
    }
    out.insert("description".to_owned(), json!(description));
    out.insert("type".to_owned(), json!("object"));
    out.insert("properties".to_owned(), Json::Object(properties));
    out.insert("required".to_owned(), Json::Array(required));
    for (k, v) in own {
        if !matches!(
            k.as_str(),
            "title" | "description" | "type" | "properties" | "required"
        ) {
            out.insert(k, v);
        }
    }
    Json::Object(out)
}

/// Points `#/$defs/X` references at the lifted `#/$defs/<prefix>X`.
fn rewrite_refs(value: &mut Json, prefix: &str) {
    match value {
        Json::Object(object) => {
            for (key, child) in object.iter_mut() {
                if key == "$ref" {
                    if let Json::String(target) = child {
                        for base in ["#/$defs/", "#/definitions/"] {
                            if let Some(name) = target.strip_prefix(base) {
                                *target = format!("#/$defs/{prefix}{name}");
                                break;
                            }
                        }
                    }
                } else {
                    rewrite_refs(child, prefix);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|item| rewrite_refs(item, prefix)),
        _ => {}
    }
}

fn http_schema() -> Json {
    let string_or_list = |description: &str| -> Json {
        json!({
            "description": description,
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    };
    json!({
        "description": "Home Assistant's http settings; hass-auth reads the keys below and ignores others.",
        "type": ["object", "null"],
        "properties": {
            "server_host": string_or_list("Addresses or host names to listen on. Default: 0.0.0.0 and ::."),
            "server_port": { "type": "integer", "minimum": 1, "maximum": 65535, "default": 8123 },
            "ip_ban_enabled": { "type": "boolean", "default": true, "description": "Ban IPs after too many failed logins (see login_attempts_threshold)." },
            "login_attempts_threshold": {
                "type": "integer",
                "default": -1,
                "description": "Failed attempts before an IP is banned; -1 never bans.",
                "anyOf": [ { "minimum": 0 }, { "const": -1 } ]
            },
            "ban_duration": {
                "description": "hass-auth only: how long an IP ban lasts, in seconds, or 'forever' (Home Assistant's bans never expire).",
                "default": 86400,
                "anyOf": [ { "type": "integer", "minimum": 1 }, { "const": "forever" } ]
            },
            "use_x_forwarded_for": { "type": "boolean", "default": false, "description": "Requires trusted_proxies." },
            "trusted_proxies": string_or_list("Networks of trusted reverse proxies (e.g. 172.30.33.0/24). Requires use_x_forwarded_for."),
            "use_x_frame_options": { "type": "boolean", "default": true },
            "cors_allowed_origins": string_or_list("Origins allowed by CORS. Default: https://cast.home-assistant.io."),
            "frontend_dir": { "type": "string", "description": "hass-auth only: a built Home Assistant frontend to serve the login page from." },
            "fetch_client_redirect_uris": { "type": "boolean", "default": false, "description": "hass-auth only: fetch a client's client_id page for the redirect URIs it publishes (5 s, 10 KiB, http(s) only)." },
            "fetch_client_ca_file": { "type": "string", "description": "hass-auth only: PEM certificates trusted, besides the built-in roots, when fetching client_id pages." },
            "ssl_certificate": { "type": "string", "description": "Serve HTTPS with this PEM certificate chain (relative to the configuration directory); reloaded on SIGHUP." },
            "ssl_key": { "type": "string", "description": "The PEM private key of ssl_certificate (default: read from the certificate file)." },
            "ssl_peer_certificate": { "type": "string", "description": "PEM CA certificates: clients must present a certificate signed by one of them." },
            "ssl_profile": { "enum": ["modern", "intermediate"], "default": "modern", "description": "Accepted for Home Assistant compatibility; both use rustls's TLS 1.2 and 1.3 defaults." }
        },
        "dependentRequired": {
            "use_x_forwarded_for": ["trusted_proxies"],
            "trusted_proxies": ["use_x_forwarded_for"]
        }
    })
}

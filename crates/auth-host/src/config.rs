//! `configuration.yaml` to [`HostConfig`]: the `homeassistant:` auth keys and the `http:` section.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth_core::registry::{
    MfaRegistration, PasswordPolicy, PluginConfigError, PluginContext, PluginSpec,
    ProviderRegistration, find_mfa_module, find_provider, mfa_registrations,
    provider_registrations,
};
use auth_core::{MemoryStorage, OsRng, SystemClock};
use serde_json::Value as Json;

use crate::error::{ConfigError, Location};
use crate::http::{HttpOptions, parse_http};
use crate::resolve::{EnvLookup, Key, Node, Resolver, Value, join_key, plain_scalar};
use crate::yaml::{Mark, Raw, RawNode, SourceFile, parse_document};

/// Home Assistant's error for two providers with the same `(type, id)`.
const DUPLICATE_PROVIDER: &str = "Duplicate auth provider {} found. Please add unique IDs if you want to have the same auth provider twice";
/// Home Assistant's error for two MFA modules with the same id.
const DUPLICATE_MODULE: &str = "Duplicate mfa module {} found. Please add unique IDs if you want to have the same mfa module twice";

/// The configuration hass-auth reads from `configuration.yaml`.
#[derive(Clone, Debug, PartialEq)]
pub struct HostConfig {
    /// The file it was read from (relative `!include`s and `secrets.yaml` are found next to it).
    pub source: PathBuf,
    /// `homeassistant: auth_providers`, in order (defaults applied).
    pub providers: Vec<PluginEntry>,
    /// `homeassistant: auth_mfa_modules`, in order (defaults applied).
    pub mfa_modules: Vec<PluginEntry>,
    /// The `http:` settings that matter for auth and serving.
    pub http: HttpOptions,
    /// `storage: postgres://...`: keep the stores in this PostgreSQL database instead of
    /// `.storage` (`hass-auth serve --database-url` wins over it).
    pub storage: Option<String>,
    /// Things worth telling the operator (also logged with `tracing::warn!`).
    pub warnings: Vec<String>,
}

impl HostConfig {
    /// The configuration directory (the folder of [`HostConfig::source`]).
    pub fn config_dir(&self) -> PathBuf {
        match self.source.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        }
    }
}

/// One configured provider or MFA module.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginEntry {
    /// The entry's `type`.
    pub kind: String,
    /// `id`, `name` and the plugin's own keys, as handed to the plugin.
    pub spec: PluginSpec,
    /// Where the entry is, `file:line:column` (or `file (default)` for a default entry).
    pub location: String,
    /// Path of the entry, e.g. `homeassistant.auth_providers[1]`.
    pub key_path: String,
    /// A provider's required MFA chain (its `modules:` key, which the provider never sees);
    /// empty for MFA modules and providers without one.
    pub modules: Vec<ChainModule>,
    details: EntryDetails,
}

/// One module of a provider's required MFA chain (`modules:` on a provider entry).
#[derive(Clone, Debug, PartialEq)]
pub struct ChainModule {
    /// The module entry: `type`, `id`, `name` and the module's own keys (without `enroll`).
    /// When its id (default: the type) is also configured in `auth_mfa_modules` or in an earlier
    /// chain, it is that module (one instance per id); it may then only repeat its settings.
    pub entry: PluginEntry,
    /// `enroll` (default `true`): whether a login not set up in the module enrols in it during
    /// the login, or is refused with `mfa_setup_required`.
    pub enroll: bool,
}

impl ChainModule {
    /// The module id: `id`, defaulting to the type.
    pub fn module_id(&self) -> &str {
        module_id(&self.entry)
    }
}

/// What is needed to point plugin errors at the right line without showing secrets.
#[derive(Clone, PartialEq, Default)]
struct EntryDetails {
    /// Where the entry is (None for defaults).
    location: Option<Location>,
    /// Every key inside the entry: (name, nesting depth, key path, location).
    keys: Vec<(String, usize, String, Location)>,
    /// Scalar values (as text) that came from `!secret` or `!env_var`.
    sensitive: Vec<String>,
}

impl std::fmt::Debug for EntryDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryDetails")
            .field("location", &self.location)
            .field("keys", &self.keys.len())
            .field(
                "sensitive",
                &format_args!("<{} redacted>", self.sensitive.len()),
            )
            .finish()
    }
}

impl PluginEntry {
    /// An entry that is not written in a file (the built-in defaults, or a host's own).
    pub fn new(kind: &str, spec: PluginSpec, key_path: &str, source: &Path) -> Self {
        Self {
            kind: kind.to_owned(),
            spec,
            location: format!("{} (default)", source.display()),
            key_path: key_path.to_owned(),
            modules: Vec::new(),
            details: EntryDetails::default(),
        }
    }

    /// The plugin's error, with the position of the offending key (or of the entry), the entry's
    /// path and type; values that came from secrets are redacted.
    pub fn plugin_error(&self, error: &PluginConfigError) -> ConfigError {
        let mut message = error.0.clone();
        // serde quotes strings as "…" (Debug) and other values as `…`.
        for secret in &self.details.sensitive {
            if !secret.is_empty() {
                message = message
                    .replace(&format!("{secret:?}"), "\"<redacted>\"")
                    .replace(&format!("`{secret}`"), "`<redacted>`");
            }
        }
        let mut location = self.details.location.clone();
        let field = ["unknown field `", "duplicate field `"]
            .iter()
            .find_map(|prefix| message.strip_prefix(prefix))
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned());
        if let Some(field) = field
            && let Some((_, _, _, at)) = self
                .details
                .keys
                .iter()
                .filter(|(name, ..)| *name == field)
                .min_by_key(|(_, depth, ..)| *depth)
        {
            location = Some(at.clone());
        }
        ConfigError::Plugin {
            location: location.unwrap_or_else(|| Location {
                file: PathBuf::from(self.location.trim_end_matches(" (default)")),
                line: 1,
                column: 1,
            }),
            key_path: self.key_path.clone(),
            kind: self.kind.clone(),
            message,
        }
    }
}

/// Reads `configuration.yaml` with a chosen environment (for `!env_var`).
#[derive(Clone)]
pub struct ConfigLoader {
    env: Arc<EnvLookup>,
}

impl std::fmt::Debug for ConfigLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigLoader").finish_non_exhaustive()
    }
}

impl Default for ConfigLoader {
    fn default() -> Self {
        Self {
            env: Arc::new(|name: &str| std::env::var(name).ok()),
        }
    }
}

impl ConfigLoader {
    /// A loader reading the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `env` instead of the process environment for `!env_var`.
    pub fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Reads and checks the configuration file at `config_path`, then applies the HTTP settings
    /// of `.storage/http` next to it (Home Assistant 2026.8+; see the `http_store` module).
    pub fn load(&self, config_path: &Path) -> Result<HostConfig, ConfigError> {
        let text = std::fs::read_to_string(config_path).map_err(|source| ConfigError::Read {
            path: config_path.to_owned(),
            source,
        })?;
        let mut config = self.parse(&text, config_path)?;
        let dir = config.config_dir();
        for warning in crate::http_store::merge_http_store(&mut config.http, &dir)? {
            tracing::warn!("{warning}");
            config.warnings.push(warning);
        }
        Ok(config)
    }

    /// Checks configuration `text`; `source` names it in messages and locates `secrets.yaml`
    /// and `!include`d files.
    /// Refuses to go on when two linked plugin crates register one `type`.
    pub fn parse(&self, text: &str, source: &Path) -> Result<HostConfig, ConfigError> {
        auth_core::registry::check_registrations()?;
        Parser::new(source, self.env.as_ref()).parse(text)
    }
}

/// Reads and checks the configuration file at `config_path` (see [`ConfigLoader`]).
///
/// ```
/// use provider_example_fork as _;
///
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("secrets.yaml"), "kiosk_password: s3cret\n").unwrap();
/// std::fs::write(
///     dir.path().join("configuration.yaml"),
///     "homeassistant:\n  auth_providers:\n    - type: example_fork\n      \
///      accounts: [{login: kiosk, secret: !secret kiosk_password}]\n  auth_mfa_modules: []\n",
/// )
/// .unwrap();
/// let config = auth_host::load_config(&dir.path().join("configuration.yaml"))?;
/// assert_eq!(config.providers[0].kind, "example_fork");
/// # Ok::<(), auth_host::ConfigError>(())
/// ```
pub fn load_config(config_path: &Path) -> Result<HostConfig, ConfigError> {
    ConfigLoader::new().load(config_path)
}

/// Checks configuration `text`; `source` names it in messages and locates `secrets.yaml` and
/// `!include`d files.
///
/// ```
/// use std::path::Path;
/// use provider_example_fork as _; // link the plugin so its `type` is registered
///
/// let text = "
/// homeassistant:
///   auth_providers:
///     - type: example_fork          # a provider crate linked by this example
///       accounts: [{login: kiosk, secret: s3cret}]
///   auth_mfa_modules: []
/// http:
///   server_port: 8124
/// ";
/// let config = auth_host::parse_config(text, Path::new("/config/configuration.yaml"))?;
/// assert_eq!(config.providers.len(), 1);
/// assert_eq!(config.http.server_port, 8124);
///
/// // Mistakes name the file, line, column and key.
/// let typo = text.replace("accounts", "acounts");
/// let error = auth_host::parse_config(&typo, Path::new("/config/configuration.yaml")).unwrap_err();
/// assert!(error.to_string().starts_with("/config/configuration.yaml:5:7: "), "{error}");
/// assert!(error.to_string().contains("unknown field `acounts`"), "{error}");
/// # Ok::<(), auth_host::ConfigError>(())
/// ```
pub fn parse_config(text: &str, source: &Path) -> Result<HostConfig, ConfigError> {
    ConfigLoader::new().parse(text, source)
}

fn invalid(mark: &Mark, key_path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        location: mark.location(),
        key_path: key_path.to_owned(),
        message: message.into(),
    }
}

/// Whether a raw node (after following tags) is `null`/empty.
pub(crate) fn is_null(node: &RawNode) -> bool {
    let core = node.tag.as_ref().and_then(|t| t.core());
    match &node.raw {
        Raw::Scalar { .. } if core == Some("null") => true,
        Raw::Scalar { text, plain: true } if node.tag.is_none() => {
            plain_scalar(text) == Value::Null
        }
        _ => false,
    }
}

/// Fails on a key that appears twice in a mapping we read.
pub(crate) fn check_unique(entries: &[(Key, Node)], path: &str) -> Result<(), ConfigError> {
    for (i, (key, _)) in entries.iter().enumerate() {
        if let Some((first, _)) = entries[..i].iter().find(|(k, _)| k.name == key.name) {
            return Err(invalid(
                &key.mark,
                &join_key(path, &key.name),
                format!(
                    "duplicate key '{}' (first defined at line {})",
                    key.name, first.mark.line
                ),
            ));
        }
    }
    Ok(())
}

/// A resolved node as JSON, recording key positions and secret strings on the way.
fn to_json(
    node: &Node,
    path: &str,
    depth: usize,
    details: &mut EntryDetails,
) -> Result<Json, ConfigError> {
    if node.sensitive {
        match &node.value {
            Value::Int(i) => details.sensitive.push(i.to_string()),
            Value::Float(f) => details.sensitive.push(f.to_string()),
            Value::Bool(b) => details.sensitive.push(b.to_string()),
            _ => {}
        }
    }
    Ok(match &node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => {
            if let Ok(v) = i64::try_from(*i) {
                Json::from(v)
            } else if let Ok(v) = u64::try_from(*i) {
                Json::from(v)
            } else {
                Json::from(*i as f64)
            }
        }
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => {
            if node.sensitive {
                details.sensitive.push(s.clone());
            }
            Json::String(s.clone())
        }
        Value::Seq(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{path}[{i}]"), depth + 1, details))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => {
            check_unique(entries, path)?;
            let mut object = serde_json::Map::new();
            for (key, value) in entries {
                let key_path = join_key(path, &key.name);
                details.keys.push((
                    key.name.clone(),
                    depth,
                    key_path.clone(),
                    key.mark.location(),
                ));
                object.insert(
                    key.name.clone(),
                    to_json(value, &key_path, depth + 1, details)?,
                );
            }
            Json::Object(object)
        }
    })
}

/// Provider, MFA module, or module of a provider's required chain, for messages and rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Provider,
    Module,
    ChainModule,
}

impl Role {
    fn noun(self) -> &'static str {
        match self {
            Role::Provider => "auth provider",
            Role::Module | Role::ChainModule => "mfa module",
        }
    }

    fn compiled_kinds(self) -> Vec<&'static str> {
        match self {
            Role::Provider => provider_registrations().iter().map(|r| r.kind).collect(),
            Role::Module | Role::ChainModule => {
                mfa_registrations().iter().map(|r| r.kind).collect()
            }
        }
    }

    fn testing_only(self, kind: &str) -> Option<bool> {
        match self {
            Role::Provider => find_provider(kind).map(|r| r.testing_only),
            Role::Module | Role::ChainModule => find_mfa_module(kind).map(|r| r.testing_only),
        }
    }
}

/// Keys of an entry that are the host's, not the plugin's.
#[derive(Default)]
struct Extras {
    /// A provider's `modules:` (its required MFA chain), with the key's mark.
    modules: Option<(Mark, Node)>,
    /// A chain module's `enroll:`.
    enroll: Option<bool>,
}

/// An entry as read, with its position and the host's own keys.
struct Parsed {
    mark: Mark,
    entry: PluginEntry,
    extras: Extras,
}

struct Parser<'a> {
    file: Arc<SourceFile>,
    resolver: Resolver<'a>,
    warnings: Vec<String>,
}

impl<'a> Parser<'a> {
    fn new(source: &Path, env: &'a EnvLookup) -> Self {
        let file = SourceFile::root(source);
        let resolver = Resolver::new(file.dir(), env);
        Self {
            file,
            resolver,
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, message: String) {
        tracing::warn!("{message}");
        self.warnings.push(message);
    }

    fn parse(mut self, text: &str) -> Result<HostConfig, ConfigError> {
        let root = parse_document(text, &self.file)?
            .unwrap_or_else(|| RawNode::empty_map(Mark::start_of(&self.file)));
        let root = self.resolver.follow(&root, "")?;
        let mut homeassistant: Option<(&RawNode, &RawNode)> = None;
        let mut http: Option<(&RawNode, &RawNode)> = None;
        let mut storage: Option<(&RawNode, &RawNode)> = None;
        match &root.node.raw {
            Raw::Map(entries) => {
                for (key, value) in entries {
                    let name = self.resolver.key_name(key, "", 0)?;
                    let slot = match name.as_str() {
                        "homeassistant" => &mut homeassistant,
                        "http" => &mut http,
                        "storage" => &mut storage,
                        _ => {
                            tracing::debug!(
                                section = name.as_str(),
                                "ignoring configuration section"
                            );
                            continue;
                        }
                    };
                    if let Some((first, _)) = slot {
                        return Err(invalid(
                            &key.mark,
                            &name,
                            format!(
                                "duplicate key '{name}' (first defined at line {})",
                                first.mark.line
                            ),
                        ));
                    }
                    *slot = Some((key, value));
                }
            }
            _ if is_null(&root.node) => {}
            _ => {
                return Err(invalid(
                    &root.mark(),
                    "(top level)",
                    "expected a mapping of integrations (homeassistant:, http:, ...)",
                ));
            }
        }

        let (http, http_warnings) =
            parse_http(&self.resolver, http.map(|(_, v)| v), &self.file.dir())?;
        for warning in http_warnings {
            self.warn(warning);
        }

        let storage = match storage {
            Some((_, value)) => self.storage_url(value)?,
            None => None,
        };

        let (providers_node, modules_node) = match homeassistant {
            Some((_, value)) => self.auth_keys(value)?,
            None => (None, None),
        };

        let providers = match providers_node {
            Some(node) => {
                let providers =
                    self.entries(&node, Role::Provider, "homeassistant.auth_providers")?;
                if providers.is_empty() {
                    self.warn(format!(
                        "{}: no auth providers are configured: nobody can log in",
                        self.file.path.display()
                    ));
                }
                providers
            }
            None => self.default_providers(),
        };
        let mfa_modules = match modules_node {
            Some(node) => self.entries(&node, Role::Module, "homeassistant.auth_mfa_modules")?,
            None => self.default_modules(),
        };
        let context = PluginContext {
            storage: Arc::new(MemoryStorage::new()),
            clock: Arc::new(SystemClock),
            rng: Arc::new(OsRng),
            password_policy: PasswordPolicy::default(),
            trusted_proxies: http.trusted_proxies.clone(),
        };
        for entry in &providers {
            self.check_entry(entry, Role::Provider, &context)?;
        }
        for entry in &mfa_modules {
            self.check_entry(entry, Role::Module, &context)?;
        }
        self.check_chains(&providers, &mfa_modules, &context)?;

        Ok(HostConfig {
            source: self.file.path.clone(),
            providers,
            mfa_modules,
            http,
            storage,
            warnings: self.warnings,
        })
    }

    /// The top-level `storage:` key: a PostgreSQL URL (`postgres://user@host/db`), or null.
    fn storage_url(&self, value: &RawNode) -> Result<Option<String>, ConfigError> {
        let node = self.resolver.resolve(value, "storage")?;
        let url = match &node.value {
            Value::Null => return Ok(None),
            Value::Str(s) => s.trim().to_owned(),
            other => {
                return Err(invalid(
                    &node.mark,
                    "storage",
                    format!(
                        "expected a PostgreSQL URL (postgres://user@host/database), found {}",
                        other.describe()
                    ),
                ));
            }
        };
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"));
        let host = rest
            .map(|r| r.rsplit_once('@').map_or(r, |(_, h)| h))
            .map(|h| h.split(['/', '?']).next().unwrap_or_default());
        match host {
            Some(host) if !host.is_empty() && !host.starts_with(':') => Ok(Some(url)),
            _ => Err(invalid(
                &node.mark,
                "storage",
                "expected a PostgreSQL URL with a host (postgres://user@host/database); \
                 leave the key out to keep the stores in .storage",
            )),
        }
    }

    /// The resolved `auth_providers` and `auth_mfa_modules` of the `homeassistant:` section.
    fn auth_keys(&self, section: &RawNode) -> Result<(Option<Node>, Option<Node>), ConfigError> {
        let followed = self.resolver.follow(section, "homeassistant")?;
        let entries = match &followed.node.raw {
            Raw::Map(entries) => entries,
            _ if is_null(&followed.node) => return Ok((None, None)),
            _ => {
                return Err(invalid(
                    &followed.mark(),
                    "homeassistant",
                    "expected a mapping (name:, auth_providers:, ...)",
                ));
            }
        };
        let mut providers: Option<(Mark, Node)> = None;
        let mut modules: Option<(Mark, Node)> = None;
        for (key, value) in entries {
            let name = self.resolver.key_name(key, "homeassistant", 1)?;
            let slot = match name.as_str() {
                "auth_providers" => &mut providers,
                "auth_mfa_modules" => &mut modules,
                _ => continue,
            };
            let path = join_key("homeassistant", &name);
            if let Some((first, _)) = slot {
                return Err(invalid(
                    &key.mark,
                    &path,
                    format!(
                        "duplicate key '{name}' (first defined at line {})",
                        first.line
                    ),
                ));
            }
            *slot = Some((key.mark.clone(), self.resolver.resolve(value, &path)?));
        }
        Ok((providers.map(|(_, n)| n), modules.map(|(_, n)| n)))
    }

    fn default_providers(&mut self) -> Vec<PluginEntry> {
        if find_provider("homeassistant").is_some() {
            return vec![PluginEntry::new(
                "homeassistant",
                PluginSpec {
                    id: None,
                    name: None,
                    config: Json::Object(Default::default()),
                },
                "homeassistant.auth_providers",
                &self.file.path,
            )];
        }
        self.warn(format!(
            "{}: homeassistant.auth_providers is not set and the default homeassistant provider is not compiled into this build: no auth providers",
            self.file.path.display()
        ));
        Vec::new()
    }

    fn default_modules(&mut self) -> Vec<PluginEntry> {
        if find_mfa_module("totp").is_some() {
            return vec![PluginEntry::new(
                "totp",
                PluginSpec {
                    id: Some("totp".to_owned()),
                    name: Some("Authenticator app".to_owned()),
                    config: Json::Object(Default::default()),
                },
                "homeassistant.auth_mfa_modules",
                &self.file.path,
            )];
        }
        self.warn(format!(
            "{}: homeassistant.auth_mfa_modules is not set and the default totp module is not compiled into this build: no MFA modules",
            self.file.path.display()
        ));
        Vec::new()
    }

    /// The entries of `auth_providers` / `auth_mfa_modules`, with Home Assistant's duplicate
    /// rules; a provider's `modules:` becomes its chain.
    fn entries(
        &mut self,
        node: &Node,
        role: Role,
        path: &str,
    ) -> Result<Vec<PluginEntry>, ConfigError> {
        let mut entries = Vec::new();
        for parsed in self.parsed_entries(node, role, path)? {
            let mut entry = parsed.entry;
            if let Some((_, modules)) = parsed.extras.modules {
                let chain_path = join_key(&entry.key_path, "modules");
                entry.modules = self
                    .parsed_entries(&modules, Role::ChainModule, &chain_path)?
                    .into_iter()
                    .map(|p| ChainModule {
                        entry: p.entry,
                        enroll: p.extras.enroll.unwrap_or(true),
                    })
                    .collect();
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The entries of a list (or single mapping) of providers or modules: duplicates first (as
    /// Home Assistant), then unknown types.
    fn parsed_entries(
        &mut self,
        node: &Node,
        role: Role,
        path: &str,
    ) -> Result<Vec<Parsed>, ConfigError> {
        let items: Vec<&Node> = match &node.value {
            Value::Null => Vec::new(),
            Value::Seq(items) => items.iter().collect(),
            Value::Map(_) => vec![node],
            other => {
                return Err(invalid(
                    &node.mark,
                    path,
                    format!(
                        "expected a list of {}s (or a single mapping), found {}",
                        role.noun(),
                        other.describe()
                    ),
                ));
            }
        };
        let single = matches!(node.value, Value::Map(_));
        let mut entries = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let key_path = if single {
                path.to_owned()
            } else {
                format!("{path}[{i}]")
            };
            let (entry, extras) = self.entry(item, &key_path, role)?;
            entries.push(Parsed {
                mark: item.mark.clone(),
                entry,
                extras,
            });
        }
        // Duplicates are checked before types, as Home Assistant's schema does.
        for (i, parsed) in entries.iter().enumerate() {
            let (mark, entry) = (&parsed.mark, &parsed.entry);
            let first = entries[..i].iter().find(|other| match role {
                Role::Provider => {
                    other.entry.kind == entry.kind && other.entry.spec.id == entry.spec.id
                }
                Role::Module | Role::ChainModule => module_id(&other.entry) == module_id(entry),
            });
            let Some(first) = first else { continue };
            let message = match role {
                Role::Provider => DUPLICATE_PROVIDER.replace("{}", &entry.kind),
                Role::Module => DUPLICATE_MODULE.replace("{}", &entry.kind),
                Role::ChainModule => format!(
                    "mfa module {} is listed twice in the modules of this auth provider (first at line {}); a chain asks for each module once",
                    module_id(entry),
                    first.mark.line
                ),
            };
            return Err(invalid(mark, &entry.key_path, message));
        }
        for Parsed { mark, entry, .. } in &entries {
            match role.testing_only(&entry.kind) {
                None => {
                    let kinds = role.compiled_kinds();
                    return Err(invalid(
                        mark,
                        &format!("{}.type", entry.key_path),
                        format!(
                            "unknown {} type '{}'; this build supports: {}",
                            role.noun(),
                            entry.kind,
                            if kinds.is_empty() {
                                "none".to_owned()
                            } else {
                                kinds.join(", ")
                            }
                        ),
                    ));
                }
                Some(true) => self.warn(format!(
                    "{}: {}: The {} {} is for testing only. hass-auth allows it (Home Assistant refuses it in YAML); never use it on a reachable server",
                    entry.location,
                    entry.key_path,
                    entry.kind,
                    role.noun()
                )),
                Some(false) => {}
            }
        }
        Ok(entries)
    }

    /// One entry: a mapping with `type` (string), optional `name` and `id` (strings); a provider
    /// may have `modules` (its chain), a chain module `enroll` (boolean). The other keys are the
    /// plugin's.
    fn entry(
        &self,
        node: &Node,
        key_path: &str,
        role: Role,
    ) -> Result<(PluginEntry, Extras), ConfigError> {
        let Value::Map(pairs) = &node.value else {
            return Err(invalid(
                &node.mark,
                key_path,
                format!(
                    "expected a mapping with a 'type' key, found {}",
                    node.value.describe()
                ),
            ));
        };
        check_unique(pairs, key_path)?;
        let string_key = |name: &str| -> Result<Option<String>, ConfigError> {
            match pairs.iter().find(|(k, _)| k.name == name) {
                None => Ok(None),
                Some((
                    _,
                    Node {
                        value: Value::Str(s),
                        ..
                    },
                )) => Ok(Some(s.clone())),
                Some((_, other)) => Err(invalid(
                    &other.mark,
                    &join_key(key_path, name),
                    format!("expected a string, found {}", other.value.describe()),
                )),
            }
        };
        let Some(kind) = string_key("type")? else {
            return Err(invalid(
                &node.mark,
                key_path,
                "required key 'type' not provided",
            ));
        };
        let id = string_key("id")?;
        let name = string_key("name")?;
        let location = node.mark.location();
        let mut details = EntryDetails {
            location: Some(location.clone()),
            ..Default::default()
        };
        let mut config = serde_json::Map::new();
        let mut extras = Extras::default();
        for (key, value) in pairs {
            if matches!(key.name.as_str(), "type" | "id" | "name") {
                continue;
            }
            let path = join_key(key_path, &key.name);
            match (role, key.name.as_str()) {
                (Role::Provider, "modules") => {
                    extras.modules = Some((key.mark.clone(), value.clone()));
                    continue;
                }
                (Role::ChainModule, "enroll") => {
                    let Value::Bool(enroll) = value.value else {
                        return Err(invalid(
                            &value.mark,
                            &path,
                            format!(
                                "expected a boolean (true or false), found {}",
                                value.value.describe()
                            ),
                        ));
                    };
                    extras.enroll = Some(enroll);
                    continue;
                }
                _ => {}
            }
            details
                .keys
                .push((key.name.clone(), 0, path.clone(), key.mark.location()));
            config.insert(key.name.clone(), to_json(value, &path, 1, &mut details)?);
        }
        let entry = PluginEntry {
            kind,
            spec: PluginSpec {
                id,
                name,
                config: Json::Object(config),
            },
            location: location.to_string(),
            key_path: key_path.to_owned(),
            modules: Vec::new(),
            details,
        };
        Ok((entry, extras))
    }

    /// Chains use one instance per module id: an id configured in `auth_mfa_modules` or in an
    /// earlier chain is that module (same type, no other settings); a new id is a module of its
    /// own, checked by its plugin now.
    fn check_chains(
        &self,
        providers: &[PluginEntry],
        mfa_modules: &[PluginEntry],
        context: &PluginContext,
    ) -> Result<(), ConfigError> {
        let mut known: Vec<&PluginEntry> = mfa_modules.iter().collect();
        for link in providers.iter().flat_map(|p| &p.modules) {
            let entry = &link.entry;
            match known.iter().find(|k| module_id(k) == link.module_id()) {
                Some(first) => check_same_module(entry, first)?,
                None => {
                    self.check_entry(entry, Role::ChainModule, context)?;
                    known.push(entry);
                }
            }
        }
        Ok(())
    }

    /// Lets the plugin check its keys now, against a scratch in-memory store (builders are plain
    /// constructors; loading happens later in `initialize`).
    fn check_entry(
        &self,
        entry: &PluginEntry,
        role: Role,
        context: &PluginContext,
    ) -> Result<(), ConfigError> {
        let spec = entry.spec.clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match role {
            Role::Provider => find_provider(&entry.kind)
                .map(|r: &ProviderRegistration| (r.build)(spec, context).map(drop)),
            Role::Module | Role::ChainModule => find_mfa_module(&entry.kind)
                .map(|r: &MfaRegistration| (r.build)(spec, context).map(drop)),
        }));
        match outcome {
            Ok(None) | Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(error))) => Err(entry.plugin_error(&error)),
            Err(_) => Err(entry.plugin_error(&PluginConfigError(
                "the plugin panicked while checking its configuration".to_owned(),
            ))),
        }
    }
}

pub(crate) fn module_id(entry: &PluginEntry) -> &str {
    entry.spec.id.as_deref().unwrap_or(&entry.kind)
}

/// Where an entry is, for messages (`line N` in the same file, else `file:line:column`).
fn described_location(entry: &PluginEntry, relative_to: &PluginEntry) -> String {
    match (&entry.details.location, &relative_to.details.location) {
        (Some(at), Some(here)) if at.file == here.file => format!("line {}", at.line),
        _ => entry.location.clone(),
    }
}

/// A chain entry naming a module id that is already configured (`first`) must be that module:
/// the same type, and no settings (name, own keys) other than the ones it already has.
pub(crate) fn check_same_module(
    entry: &PluginEntry,
    first: &PluginEntry,
) -> Result<(), ConfigError> {
    let id = module_id(entry);
    let mismatch = if first.kind != entry.kind {
        Some(format!(
            "mfa module id {id} is already used by the {} module at {}; give this entry another id",
            first.kind,
            described_location(first, entry)
        ))
    } else {
        let other_name = entry.spec.name.is_some() && entry.spec.name != first.spec.name;
        let own_keys = entry.spec.config.as_object().is_some_and(|c| !c.is_empty());
        let other_config = own_keys && entry.spec.config != first.spec.config;
        (other_name || other_config).then(|| {
            format!(
                "mfa module {id} is already configured at {} with other settings; a chain uses that module: leave out the settings, or give this entry another id",
                described_location(first, entry)
            )
        })
    };
    match mismatch {
        Some(message) => Err(ConfigError::Invalid {
            location: entry.details.location.clone().unwrap_or_else(|| Location {
                file: PathBuf::from(entry.location.trim_end_matches(" (default)")),
                line: 1,
                column: 1,
            }),
            key_path: entry.key_path.clone(),
            message,
        }),
        None => Ok(()),
    }
}

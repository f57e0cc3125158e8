//! Shared helpers.

use std::path::{Path, PathBuf};

use auth_host::{ConfigError, ConfigLoader, HostConfig};

/// Environment seen by `!env_var` in these tests (the process environment is left alone).
pub fn test_env(name: &str) -> Option<String> {
    match name {
        "HASS_AUTH_TEST_PORT" => Some("9123".to_owned()),
        "HASS_AUTH_TEST_SECRET" => Some("from-the-environment".to_owned()),
        _ => None,
    }
}

/// A loader with [`test_env`].
pub fn loader() -> ConfigLoader {
    ConfigLoader::new().with_env(test_env)
}

/// Parses `text` as `configuration.yaml` (in the current directory, which has no secrets.yaml).
pub fn parse(text: &str) -> Result<HostConfig, ConfigError> {
    loader().parse(text, Path::new("configuration.yaml"))
}

/// The error message for `text`; fails the test if it parses.
pub fn error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("expected an error for:\n{text}\ngot {config:#?}"),
        Err(e) => e.to_string(),
    }
}

/// A temporary config dir holding `files` (path, content).
pub fn config_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, content).unwrap();
    }
    dir
}

/// Loads `configuration.yaml` from `dir`.
pub fn load(dir: &Path) -> Result<HostConfig, ConfigError> {
    loader().load(&dir.join("configuration.yaml"))
}

/// `path` with `prefix` (a temp dir) removed, for stable messages.
pub fn relative(message: &str, prefix: &Path) -> String {
    message.replace(&format!("{}/", prefix.display()), "")
}

/// The HA fixture's configuration.yaml.
#[allow(dead_code, reason = "used by tests that need the default features")]
pub fn fixture_config(name: &str) -> PathBuf {
    auth_testkit::fixtures_dir()
        .join(name)
        .join("configuration.yaml")
}

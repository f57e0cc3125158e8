//! The plugin list as cargo sees it (`cargo metadata`): auth-host's plugin features. The feature
//! matrix of `cargo xtask ci` runs over it, and the tidy tests compare it (and every other place
//! that names plugins) with the one list in `crates/auth-host/src/plugins.rs`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// `cargo metadata --no-deps` of the workspace.
pub fn metadata(root: &Path) -> Result<Value> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")
}

/// The workspace package called `name`.
pub fn package<'a>(metadata: &'a Value, name: &str) -> Result<&'a Value> {
    metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == name))
        .with_context(|| format!("cargo metadata lists no package {name}"))
}

/// The names a feature of `package` turns on (`default` → its list).
pub fn feature(package: &Value, name: &str) -> Vec<String> {
    package["features"][name]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The plugin features of auth-host (its `default` features), in their order there.
pub fn plugin_features(metadata: &Value) -> Result<Vec<String>> {
    let features = feature(package(metadata, "auth-host")?, "default");
    if features.is_empty() {
        bail!("auth-host has no default (plugin) features");
    }
    Ok(features)
}

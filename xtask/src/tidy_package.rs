//! Tidy checks for publishing: every crate under `crates/` carries the metadata crates.io shows
//! (description, repository, homepage, documentation, readme, keywords, categories) and
//! `cargo package --list` packs it cleanly: no warning, its README, its sources, nothing built.

use std::path::Path;
use std::process::Command;

/// Manifest keys every publishable crate sets, written as in its `Cargo.toml`.
const REQUIRED_KEYS: &[&str] = &[
    "description = ",
    "repository.workspace = true",
    "homepage.workspace = true",
    "documentation = \"https://docs.rs/",
    "readme = \"README.md\"",
    "keywords = [",
    "categories = [",
];

/// What is wrong with the manifest of crate `name` (`text`), one line each.
fn manifest_problems(name: &str, text: &str) -> Vec<String> {
    let mut problems: Vec<String> = REQUIRED_KEYS
        .iter()
        .filter(|key| {
            !text
                .lines()
                .any(|line| line.trim_start().starts_with(**key))
        })
        .map(|key| format!("crates/{name}/Cargo.toml lacks `{}`", key.trim_end()))
        .collect();
    if text.lines().any(|line| line.trim() == "publish = false") {
        problems.push(format!("crates/{name}/Cargo.toml says `publish = false`"));
    }
    if let Some(line) = text.lines().find(|l| l.starts_with("keywords = [")) {
        let count = line.matches('"').count() / 2;
        if count > 5 {
            problems.push(format!(
                "crates/{name}/Cargo.toml has {count} keywords (crates.io takes 5)"
            ));
        }
    }
    problems
}

/// What is wrong with `cargo package --list`'s answer for crate `name`.
fn listing_problems(name: &str, listed: &str, stderr: &str) -> Vec<String> {
    let mut problems: Vec<String> = stderr
        .lines()
        .filter(|l| l.starts_with("warning") || l.starts_with("error"))
        .map(|l| format!("cargo package -p {name}: {l}"))
        .collect();
    let files: Vec<&str> = listed.lines().collect();
    for wanted in ["README.md", "Cargo.toml", "src/lib.rs"] {
        let is_binary_only = wanted == "src/lib.rs" && files.contains(&"src/main.rs");
        if !files.contains(&wanted) && !is_binary_only {
            problems.push(format!("crates/{name}: the package lacks {wanted}"));
        }
    }
    for file in &files {
        let built = file.starts_with("target/") || file.contains("node_modules/");
        let scratch = file.ends_with(".snap.new") || file.ends_with(".pending-snap");
        if built || scratch {
            problems.push(format!("crates/{name}: the package would carry {file}"));
        }
    }
    problems
}

/// Runs `cargo package --list` for crate `name` from `root`: (stdout, stderr).
fn package_list(root: &Path, name: &str) -> (String, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "package",
            "--list",
            "--allow-dirty",
            "--offline",
            "-p",
            name,
        ])
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "cargo package --list -p {name} failed:\n{stderr}"
    );
    (String::from_utf8_lossy(&output.stdout).into_owned(), stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_manifest_is_told_each_missing_key() {
        let problems = manifest_problems("x", "[package]\nname = \"x\"\npublish = false\n");
        assert_eq!(problems.len(), REQUIRED_KEYS.len() + 1, "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("readme")));
        let listing = listing_problems(
            "x",
            "Cargo.toml\nsrc/lib.rs\ntarget/debug/x\n",
            "warning: manifest has no documentation, homepage or repository\n",
        );
        assert_eq!(listing.len(), 3, "{listing:#?}");
    }

    #[test]
    fn every_library_crate_is_publishable() {
        let root = super::super::project_root();
        let mut problems = Vec::new();
        let mut checked = 0;
        for entry in std::fs::read_dir(root.join("crates")).expect("crates/ exists") {
            let dir = entry.expect("readable dir entry").path();
            let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
                continue;
            };
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 crate dir")
                .to_owned();
            problems.extend(manifest_problems(&name, &text));
            if !dir.join("README.md").is_file() {
                problems.push(format!("crates/{name}/README.md is missing"));
            }
            let (listed, stderr) = package_list(&root, &name);
            problems.extend(listing_problems(&name, &listed, &stderr));
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} crates found under crates/");
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

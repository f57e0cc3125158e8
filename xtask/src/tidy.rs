//! Tidy checks written as tests: the dependency rules of `docs/ARCHITECTURE.md`.

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    /// Crates only `auth-crypto` may depend on.
    const CRYPTO_CRATES: &[&str] = &[
        "argon2",
        "bcrypt",
        "jsonwebtoken",
        "subtle",
        "rand",
        "sha2",
        "hmac",
    ];

    /// TLS and HTTP-client crates: only `indieauth-fetch` makes requests to other hosts (hyper
    /// itself also serves, so its client side is kept there by review).
    const OUTGOING_CRATES: &[&str] = &["rustls", "tokio-rustls", "webpki-roots", "ring", "reqwest"];

    /// The crate that serves HTTPS (`http: ssl_certificate`) and the TLS crates it may use for
    /// that; it gets no root store (`webpki-roots`) and no HTTP client.
    const SERVING_TLS: (&str, &[&str]) = ("auth-server", &["rustls", "tokio-rustls"]);

    fn manifests() -> BTreeMap<String, String> {
        let root = super::super::project_root();
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(root.join("crates")).expect("crates/ exists") {
            let path: PathBuf = entry.expect("readable dir entry").path().join("Cargo.toml");
            if let Ok(text) = std::fs::read_to_string(&path) {
                let name = path
                    .parent()
                    .and_then(|p| p.file_name())
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_owned();
                out.insert(name, text);
            }
        }
        out
    }

    /// Names of the dependencies declared in a manifest's `[dependencies]` and `[dev-dependencies]`.
    fn dependency_names(manifest: &str, sections: &[&str]) -> Vec<String> {
        let mut names = Vec::new();
        let mut in_section = false;
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_section = sections.iter().any(|s| line == format!("[{s}]"));
                continue;
            }
            if in_section
                && !line.starts_with('#')
                && let Some((name, _)) = line.split_once('=')
            {
                let name = name.trim().trim_end_matches(".workspace").trim();
                if !name.is_empty() {
                    names.push(name.to_owned());
                }
            }
        }
        names
    }

    #[test]
    fn only_auth_crypto_uses_crypto_crates() {
        let mut offenders = Vec::new();
        for (krate, manifest) in manifests() {
            if krate == "auth-crypto" {
                continue;
            }
            for dep in dependency_names(&manifest, &["dependencies"]) {
                if CRYPTO_CRATES.contains(&dep.as_str()) {
                    offenders.push(format!("{krate} depends on {dep}"));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "only auth-crypto may use crypto crates: {offenders:?}"
        );
    }

    /// Crypto crates one MFA plugin may use: (dependency, the only crate allowed to declare it).
    const PLUGIN_CRYPTO_CRATES: &[(&str, &str)] = &[
        ("totp-rs", "mfa-totp"),
        ("webauthn-rs", "mfa-webauthn"),
        ("openssl", "none"),
    ];

    #[test]
    fn plugin_crypto_crates_stay_in_their_plugin() {
        let mut offenders = Vec::new();
        for (krate, manifest) in manifests() {
            for dep in dependency_names(&manifest, &["dependencies", "dev-dependencies"]) {
                let owner = PLUGIN_CRYPTO_CRATES.iter().find(|(d, _)| *d == dep);
                if let Some((_, allowed)) = owner
                    && *allowed != krate
                {
                    offenders.push(format!("{krate} depends on {dep}"));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "totp-rs only in mfa-totp, webauthn-rs only in mfa-webauthn: {offenders:?}"
        );
    }

    #[test]
    fn only_indieauth_fetch_makes_outgoing_requests() {
        let mut offenders = Vec::new();
        for (krate, manifest) in manifests() {
            if krate == "indieauth-fetch" {
                continue;
            }
            for dep in dependency_names(&manifest, &["dependencies"]) {
                let serving = krate == SERVING_TLS.0 && SERVING_TLS.1.contains(&dep.as_str());
                if OUTGOING_CRATES.contains(&dep.as_str()) && !serving {
                    offenders.push(format!("{krate} depends on {dep}"));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "only indieauth-fetch may make outgoing requests: {offenders:?}"
        );
    }

    #[test]
    fn no_plugin_depends_on_another_plugin() {
        let all = manifests();
        let is_plugin = |name: &str| name.starts_with("provider-") || name.starts_with("mfa-");
        let mut offenders = Vec::new();
        for (krate, manifest) in &all {
            if !is_plugin(krate) {
                continue;
            }
            for dep in dependency_names(manifest, &["dependencies", "dev-dependencies"]) {
                if is_plugin(&dep) {
                    offenders.push(format!("{krate} depends on {dep}"));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "plugins must not depend on each other: {offenders:?}"
        );
    }

    #[test]
    fn dependencies_point_one_way() {
        // flow-engine, auth-crypto, indieauth-fetch <- auth-core <- plugins <- auth-http <- auth-host <- auth-server
        // (auth-host fills auth-http's HttpOptions; auth-http never depends on auth-host)
        let rank = |name: &str| -> Option<u8> {
            Some(match name {
                "auth-crypto" | "flow-engine" | "indieauth-fetch" => 0,
                "auth-core" => 1,
                n if n.starts_with("provider-") || n.starts_with("mfa-") => 2,
                "storage-postgres" => 2,
                "auth-http" => 3,
                "auth-host" => 4,
                "auth-server" => 5,
                _ => return None,
            })
        };
        let mut offenders = Vec::new();
        for (krate, manifest) in manifests() {
            let Some(own) = rank(&krate) else { continue };
            for dep in dependency_names(&manifest, &["dependencies"]) {
                if let Some(theirs) = rank(&dep)
                    && theirs >= own
                    && dep != krate
                {
                    offenders.push(format!(
                        "{krate} (layer {own}) depends on {dep} (layer {theirs})"
                    ));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "dependencies must point down the layers: {offenders:?}"
        );
    }

    #[test]
    fn storage_backends_depend_on_auth_core_only() {
        let all = manifests();
        let manifest = all
            .get("storage-postgres")
            .expect("storage-postgres exists");
        let ours: Vec<String> = dependency_names(manifest, &["dependencies"])
            .into_iter()
            .filter(|d| all.contains_key(d))
            .collect();
        assert_eq!(
            ours,
            ["auth-core"],
            "storage-postgres's workspace dependencies"
        );
    }

    #[test]
    fn flow_engine_knows_nothing_of_auth() {
        let all = manifests();
        let manifest = all.get("flow-engine").expect("flow-engine exists");
        let deps = dependency_names(manifest, &["dependencies"]);
        assert!(
            deps.iter().all(|d| !d.starts_with("auth-")),
            "flow-engine must stay generic: {deps:?}"
        );
    }

    /// The one plugin list: `(crate ident, feature)` pairs of the `builtin_plugins!` invocation in
    /// `crates/auth-host/src/plugins.rs`.
    fn plugin_list() -> Vec<(String, String)> {
        let path = super::super::project_root().join("crates/auth-host/src/plugins.rs");
        let source = std::fs::read_to_string(&path).expect("auth-host's plugins.rs");
        let start = source
            .lines()
            .position(|l| l.starts_with("builtin_plugins! {"))
            .expect("plugins.rs invokes builtin_plugins!");
        source
            .lines()
            .skip(start + 1)
            .take_while(|l| !l.starts_with('}'))
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .map(|l| {
                let (ident, feature) = l.split_once(" = ").expect("`ident = \"feature\",`");
                let feature = feature.trim_end_matches(',').trim_matches('"');
                (ident.to_owned(), feature.to_owned())
            })
            .collect()
    }

    #[test]
    fn plugin_list_is_the_one_list() {
        use super::super::plugins::{feature, metadata, package};
        let list = plugin_list();
        let names: Vec<String> = list.iter().map(|(_, f)| f.clone()).collect();
        assert!(names.len() >= 10, "the list was not read: {list:?}");
        for (ident, feature) in &list {
            assert_eq!(
                *ident,
                feature.replace('-', "_"),
                "{feature}: crate and feature"
            );
        }
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        let metadata = metadata(&super::super::project_root()).expect("cargo metadata");

        // auth-host: one feature per plugin, `dep:` its optional dependency, all on by default.
        let host = package(&metadata, "auth-host").expect("auth-host");
        assert_eq!(
            feature(host, "default"),
            names,
            "auth-host's default features"
        );
        let host_features: Vec<String> = host["features"]
            .as_object()
            .expect("features")
            .keys()
            .filter(|k| *k != "default")
            .cloned()
            .collect();
        assert_eq!(
            sorted(host_features),
            sorted(names.clone()),
            "auth-host's features"
        );
        for name in &names {
            assert_eq!(
                feature(host, name),
                [format!("dep:{name}")],
                "auth-host feature {name}"
            );
        }
        let optional: Vec<String> = host["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["optional"] == true)
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(
            sorted(optional),
            sorted(names.clone()),
            "auth-host's optional dependencies"
        );

        // auth-server: the same features, passed on to auth-host, all on by default.
        let server = package(&metadata, "auth-server").expect("auth-server");
        let mut server_default = vec!["postgres".to_owned()];
        server_default.extend(names.iter().cloned());
        assert_eq!(
            feature(server, "default"),
            server_default,
            "auth-server's default features"
        );
        for name in &names {
            assert_eq!(
                feature(server, name),
                [format!("auth-host/{name}")],
                "auth-server feature {name}"
            );
        }
        let server_plugins: Vec<String> = server["features"]
            .as_object()
            .expect("features")
            .keys()
            .filter(|k| k.starts_with("provider-") || k.starts_with("mfa-"))
            .cloned()
            .collect();
        assert_eq!(
            sorted(server_plugins),
            sorted(names.clone()),
            "auth-server's plugin features"
        );

        // Every plugin crate of the workspace's crates/ is in the list.
        let crates_dir = super::super::project_root().join("crates");
        let workspace_plugins: Vec<String> = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .filter(|p| {
                p["manifest_path"]
                    .as_str()
                    .is_some_and(|m| std::path::Path::new(m).starts_with(&crates_dir))
            })
            .filter_map(|p| p["name"].as_str())
            .filter(|n| n.starts_with("provider-") || n.starts_with("mfa-"))
            .map(str::to_owned)
            .collect();
        assert_eq!(
            sorted(workspace_plugins),
            sorted(names.clone()),
            "plugin crates in crates/"
        );

        // The README's crate table names each one.
        let readme = std::fs::read_to_string(super::super::project_root().join("README.md"))
            .expect("README.md");
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !readme.contains(&format!("`{n}`")))
            .collect();
        assert!(missing.is_empty(), "README.md does not name {missing:?}");
    }

    #[test]
    fn dependency_parser_reads_sections() {
        let manifest = "[package]\nname = \"x\"\n[dependencies]\nserde.workspace = true\nfoo = \"1\"\n[dev-dependencies]\nbar = \"1\"\n";
        assert_eq!(
            dependency_names(manifest, &["dependencies"]),
            vec!["serde", "foo"]
        );
        assert_eq!(
            dependency_names(manifest, &["dev-dependencies"]),
            vec!["bar"]
        );
    }
}

//! The system programs the test suite runs for real (a browser and its driver, a database
//! server), installed from Debian's packages when they are missing, so that `cargo xtask ci`
//! passes on a fresh Debian machine with nothing installed by hand.
//!
//! Set `HASS_AUTH_NO_PROVISION=1` to never install anything: the tests that need a missing
//! program then fail and say how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A program the tests need, how to find it, and the Debian packages that bring it.
struct Need {
    /// What the program is for, for messages.
    purpose: &'static str,
    /// An environment variable that may point at the program instead.
    env: Option<&'static str>,
    /// Names to look for on `PATH` (any one will do).
    commands: &'static [&'static str],
    /// Directories whose subdirectories are searched for `commands` too (Debian keeps
    /// PostgreSQL's server programs in `/usr/lib/postgresql/<version>/bin`).
    versioned_dirs: &'static [&'static str],
    /// Debian packages to install when the program is missing.
    packages: &'static [&'static str],
}

const NEEDS: &[Need] = &[
    Need {
        purpose: "browser tests (Chromium)",
        env: Some("HASS_AUTH_CHROMIUM"),
        commands: &["chromium", "chromium-browser"],
        versioned_dirs: &[],
        packages: &["chromium"],
    },
    Need {
        purpose: "browser tests (chromedriver)",
        env: Some("HASS_AUTH_CHROMEDRIVER"),
        commands: &["chromedriver"],
        versioned_dirs: &[],
        packages: &["chromium-driver"],
    },
    Need {
        purpose: "PostgreSQL tests (initdb, pg_ctl)",
        env: None,
        commands: &["initdb"],
        versioned_dirs: &["/usr/lib/postgresql"],
        packages: &["postgresql"],
    },
    Need {
        purpose: "OpenID Connect tests (Node.js and npm run oidc-provider)",
        env: None,
        commands: &["npm"],
        versioned_dirs: &[],
        packages: &["nodejs", "npm"],
    },
];

/// Installs the Debian packages of every missing program (once, with one `apt-get`), unless
/// `HASS_AUTH_NO_PROVISION` is set. Fails when something is missing and cannot be installed.
pub fn ensure_test_programs() -> Result<()> {
    let missing: Vec<&Need> = NEEDS.iter().filter(|need| !is_present(need)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().flat_map(|n| n.packages).copied().collect();
    let purposes: Vec<&str> = missing.iter().map(|n| n.purpose).collect();
    if std::env::var_os("HASS_AUTH_NO_PROVISION").is_some() {
        eprintln!(
            "xtask: missing for {}: install Debian packages {} (HASS_AUTH_NO_PROVISION is set, not installing)",
            purposes.join(", "),
            packages.join(" ")
        );
        return Ok(());
    }
    eprintln!(
        "xtask: installing {} for {}",
        packages.join(" "),
        purposes.join(", ")
    );
    if which("apt-get").is_none() {
        bail!(
            "missing for {}: this is not a Debian-like system (no apt-get); install {} or their \
             equivalents by hand",
            purposes.join(", "),
            packages.join(" ")
        );
    }
    apt_get(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&packages);
    apt_get(&install)?;
    let still: Vec<&str> = NEEDS
        .iter()
        .filter(|need| !is_present(need))
        .map(|n| n.purpose)
        .collect();
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(", "));
    }
    Ok(())
}

/// Runs `apt-get ARGS` non-interactively, as root directly or through `sudo -n`.
fn apt_get(args: &[&str]) -> Result<()> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut command = if is_root {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "apt-get"]);
        sudo
    };
    command.env("DEBIAN_FRONTEND", "noninteractive").args(args);
    let status = command
        .status()
        .with_context(|| format!("cannot run apt-get {}", args.join(" ")))?;
    if !status.success() {
        bail!(
            "apt-get {} failed ({status}){}",
            args.join(" "),
            if is_root {
                ""
            } else {
                ": run it as root, or install the packages by hand"
            }
        );
    }
    Ok(())
}

fn is_present(need: &Need) -> bool {
    if let Some(var) = need.env
        && let Some(path) = std::env::var_os(var)
    {
        return Path::new(&path).exists();
    }
    need.commands.iter().any(|c| which(c).is_some())
        || need.versioned_dirs.iter().any(|dir| {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|version| {
                    need.commands
                        .iter()
                        .any(|c| version.path().join("bin").join(c).is_file())
                })
        })
}

/// The first `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(versioned_dirs: &'static [&'static str]) -> Need {
        Need {
            purpose: "test",
            env: None,
            commands: &["hass-auth-provision-test-program"],
            versioned_dirs,
            packages: &[],
        }
    }

    #[test]
    fn a_program_in_a_versioned_directory_is_found() {
        let dir = std::env::temp_dir().join(format!("hass-auth-provision-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let leaked: &'static str = Box::leak(dir.to_str().unwrap().to_owned().into_boxed_str());
        let dirs: &'static [&'static str] = Box::leak(vec![leaked].into_boxed_slice());
        assert!(!is_present(&need(dirs)));
        let bin = dir.join("15").join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("hass-auth-provision-test-program"), "").unwrap();
        assert!(is_present(&need(dirs)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_program_is_missing() {
        assert!(!is_present(&need(&["/nonexistent-hass-auth-dir"])));
        assert!(which("sh").is_some());
    }
}

//! Project automation for hass-auth: `cargo xtask ci | codegen | bench`.
//!
//! * `ci`: format check, clippy (`-D warnings`), the whole test suite (tidy checks included),
//!   auth-host's feature matrix (no plugin, each plugin alone; the server without the
//!   `homeassistant` provider), and `cargo doc` with warnings
//!   denied. This is what `.ci/run` runs. Before the tests it installs the system programs they
//!   run for real (Chromium, chromedriver, PostgreSQL) from Debian's packages when missing
//!   (`provision.rs`; `HASS_AUTH_NO_PROVISION=1` turns that off).
//! * `codegen`: regenerates checked-in generated files (`docs/config.schema.json`); `--check`
//!   fails when they are stale.
//! * `bench`: runs the criterion benchmarks, then the release server on loopback under load
//!   (sign-ins per provider, refresh grants, authenticated and rejected API requests at fixed
//!   concurrency: ops/s, median and p99 latency, the server's peak memory); writes
//!   `target/bench-report.json` and prints every figure. Then whole sign-ins (login flow and code
//!   exchange) on stores pre-seeded with 1k, 10k and 100k refresh tokens (of 100, 1k and 10k
//!   users). `--micro-only`, `--http-only`, `--sign-in-only` (just the whole sign-ins),
//!   `--seeded 1000,10000` (token counts),
//!   `--postgres` (the whole sign-ins also on PostgreSQL, one and three servers),
//!   `--binary PATH` (measure that server build, e.g. one with frame pointers for `perf`),
//!   `--seconds N` (per HTTP scenario, default 5), `--concurrency N` (default 8), and a criterion
//!   filter.
//! * `soak`: the soak test of the real binary for longer (`--seconds N`, default 60); CI runs it
//!   for 5 s as part of the tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

mod bench;
mod load;
mod plugins;
mod provision;
mod tidy;
#[cfg(test)]
mod tidy_docs;
#[cfg(test)]
mod tidy_package;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("codegen") => codegen(&root, args.iter().any(|a| a == "--check")),
        Some("bench") => bench::run(&root, &bench::Options::parse(&args[1..])?),
        Some("soak") => soak(&root, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | codegen [--check] | bench [--micro-only | --http-only | --sign-in-only] [--seeded N,N] [--postgres] [--binary PATH] [--seconds N] [--concurrency N] [criterion filter] | soak [--seconds N]>"
            );
            std::process::exit(2);
        }
    }
}

/// The workspace root. `cargo run` tells the running binary where its manifest is; the path
/// compiled in is only the fallback, since a binary built from another checkout that shares the
/// target directory would otherwise work on that checkout.
fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// Tests counted over every `cargo test` run of this process: (passed, failed).
static TEST_COUNTS: std::sync::Mutex<(u64, u64)> = std::sync::Mutex::new((0, 0));

/// Reads `N passed; M failed` out of a libtest summary line.
fn parse_test_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let number_before = |word: &str| -> Option<u64> {
        let end = rest.find(word)?;
        rest[..end]
            .trim_end()
            .rsplit([' ', '.'])
            .next()?
            .parse()
            .ok()
    };
    Some((number_before(" passed")?, number_before(" failed")?))
}

fn cargo(root: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<()> {
    let started = Instant::now();
    eprintln!("\n==> cargo {}", args.join(" "));
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(root).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let counting = args.first() == Some(&"test");
    if counting {
        cmd.stdout(std::process::Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
    if let Some(stdout) = child.stdout.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.context("reading cargo test output")?;
            println!("{line}");
            if let Some((passed, failed)) = parse_test_result(&line) {
                let mut counts = TEST_COUNTS.lock().unwrap_or_else(|e| e.into_inner());
                counts.0 += passed;
                counts.1 += failed;
            }
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    eprintln!("<== cargo {} ({:.0?})", args.join(" "), started.elapsed());
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn ci(root: &Path) -> Result<()> {
    let started = Instant::now();
    cargo(root, &["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    codegen(root, true)?;
    provision::ensure_test_programs()?;
    cargo(
        root,
        &["test", "--workspace", "--all-targets", "--locked"],
        &[],
    )?;
    cargo(root, &["test", "--workspace", "--doc", "--locked"], &[])?;
    auth_host_feature_matrix(root)?;
    cargo(
        root,
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    eprintln!(
        "\ncargo xtask ci: all checks passed in {:.0?}",
        started.elapsed()
    );
    let (passed, failed) = *TEST_COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    if passed == 0 {
        bail!("no test ran");
    }
    // The closing line CI reads: every test of every `cargo test` above.
    println!("{passed} passed, {failed} failed");
    Ok(())
}

/// Regenerates `docs/config.schema.json` (the test `schema_is_current` writes it when
/// `HASS_AUTH_WRITE_SCHEMA=1`); with `--check`, fails when it is stale instead.
fn codegen(root: &Path, check: bool) -> Result<()> {
    let args = [
        "test",
        "-p",
        "auth-host",
        "--test",
        "it",
        "--",
        "--exact",
        "schema::schema_is_current",
    ];
    if check {
        cargo(root, &args, &[])
    } else {
        cargo(root, &args, &[("HASS_AUTH_WRITE_SCHEMA", "1")])
    }
}

/// auth-host with no plugin and with each plugin alone (its plugin features, read with `cargo
/// metadata`): every `cfg(feature)` combination that matters compiles, and its tests pass. Then
/// the server with every plugin but `provider-homeassistant`: nothing else needs that provider.
fn auth_host_feature_matrix(root: &Path) -> Result<()> {
    let plugin_features = plugins::plugin_features(&plugins::metadata(root)?)?;
    cargo(
        root,
        &[
            "test",
            "-p",
            "auth-host",
            "--no-default-features",
            "--locked",
        ],
        &[],
    )?;
    for feature in &plugin_features {
        cargo(
            root,
            &[
                "test",
                "-p",
                "auth-host",
                "--no-default-features",
                "--features",
                feature,
                "--locked",
            ],
            &[],
        )?;
    }
    let without_homeassistant: Vec<&str> = std::iter::once("postgres")
        .chain(
            plugin_features
                .iter()
                .map(String::as_str)
                .filter(|f| *f != "provider-homeassistant"),
        )
        .collect();
    cargo(
        root,
        &[
            "test",
            "-p",
            "auth-server",
            "--no-default-features",
            "--features",
            &without_homeassistant.join(","),
            "--locked",
        ],
        &[],
    )
}

/// The soak test of the real binary (auth-server's `soak` test) for `--seconds N` (default 60).
fn soak(root: &Path, args: &[String]) -> Result<()> {
    let seconds = match args {
        [] => 60,
        [flag, n] if flag == "--seconds" => n.parse().context("--seconds")?,
        _ => bail!("usage: cargo xtask soak [--seconds N]"),
    };
    let seconds: u64 = seconds;
    cargo(
        root,
        &[
            "test",
            "-p",
            "auth-server",
            "--test",
            "it",
            "--locked",
            "--",
            "--exact",
            "soak::mixed_traffic_soak_returns_to_its_memory_baseline",
            "--nocapture",
        ],
        &[("HASS_AUTH_SOAK_SECONDS", &seconds.to_string())],
    )
}

#[cfg(test)]
mod counting_tests {
    #[test]
    fn reads_libtest_summaries() {
        let line = "test result: ok. 37 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(super::parse_test_result(line), Some((37, 0)));
        let line =
            "test result: FAILED. 52 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(super::parse_test_result(line), Some((52, 1)));
        assert_eq!(super::parse_test_result("running 3 tests"), None);
    }
}

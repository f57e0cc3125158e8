//! `cargo xtask bench`: the criterion micro benchmarks, then the release server on loopback
//! under fixed-concurrency load; every figure goes to `target/bench-report.json` and a table.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cargo;
use crate::load::{self, Conn, Load, Measured, expect};

/// Options of `cargo xtask bench`.
#[derive(Debug)]
pub struct Options {
    /// Run the criterion benches.
    pub micro: bool,
    /// Run the HTTP load.
    pub http: bool,
    /// Seconds measured per HTTP scenario.
    pub seconds: u64,
    /// Connections per HTTP scenario.
    pub concurrency: usize,
    /// Filter handed to criterion.
    pub filter: Vec<String>,
    /// Only the whole sign-in scenarios over pre-seeded stores.
    pub sign_in_only: bool,
    /// Refresh tokens pre-seeded for the whole sign-in scenarios.
    pub seeded: Vec<usize>,
    /// Also run the whole sign-ins with the stores in PostgreSQL, on one and on three servers.
    pub postgres: bool,
    /// A server binary to measure instead of building `target/release/hass-auth` (a profiling
    /// build, say).
    pub binary: Option<PathBuf>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options {
            micro: true,
            http: true,
            seconds: 5,
            concurrency: 8,
            filter: Vec::new(),
            sign_in_only: false,
            seeded: vec![1_000, 10_000, 100_000],
            postgres: false,
            binary: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--micro-only" => options.http = false,
                "--http-only" => options.micro = false,
                "--sign-in-only" => {
                    options.micro = false;
                    options.sign_in_only = true;
                }
                "--postgres" => options.postgres = true,
                "--binary" => {
                    options.binary = Some(args.next().context("--binary needs a path")?.into())
                }
                "--seeded" => {
                    options.seeded = args
                        .next()
                        .context("--seeded needs a list such as 1000,10000")?
                        .split(',')
                        .map(|n| n.trim().parse().context("--seeded"))
                        .collect::<Result<_>>()?
                }
                "--seconds" => {
                    options.seconds = args
                        .next()
                        .context("--seconds needs a value")?
                        .parse()
                        .context("--seconds")?
                }
                "--concurrency" => {
                    options.concurrency = args
                        .next()
                        .context("--concurrency needs a value")?
                        .parse()
                        .context("--concurrency")?
                }
                other if other.starts_with("--") => bail!("unknown option {other}"),
                other => options.filter.push(other.to_owned()),
            }
        }
        if options.concurrency == 0 || options.seconds == 0 {
            bail!("--seconds and --concurrency must be positive");
        }
        Ok(options)
    }
}

/// One criterion result.
struct Micro {
    name: String,
    median_ns: f64,
    mean_ns: f64,
}

pub fn run(root: &Path, options: &Options) -> Result<()> {
    let started = SystemTime::now();
    let mut micro = Vec::new();
    if options.micro {
        let mut args = vec!["bench", "--workspace", "--bench", "*", "--locked", "--"];
        args.extend(options.filter.iter().map(String::as_str));
        cargo(root, &args, &[])?;
        micro = criterion_results(&root.join("target/criterion"), started)?;
    }
    let mut http = None;
    if options.http {
        match &options.binary {
            Some(binary) => {
                let binary = std::path::absolute(binary)?;
                SERVER_BINARY
                    .set(binary)
                    .map_err(|_| anyhow::anyhow!("bench ran twice"))?;
            }
            None => cargo(
                root,
                &["build", "--release", "-p", "auth-server", "--locked"],
                &[],
            )?,
        }
        http = Some(http_load(root, options)?);
    }
    let report = json!({
        "generated_at_unix": started.duration_since(SystemTime::UNIX_EPOCH)?.as_secs(),
        "git_commit": git_commit(root),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "micro": micro.iter().map(|m| json!({
            "name": m.name, "median_ns": m.median_ns, "mean_ns": m.mean_ns,
        })).collect::<Vec<_>>(),
        "http": http.as_ref().map(|h: &HttpReport| json!({
            "concurrency": options.concurrency,
            "seconds_per_scenario": options.seconds,
            "scenarios": h.scenarios.iter().map(|s| json!({
                "name": s.name,
                "requests_per_op": s.requests_per_op,
                "ops": s.ops,
                "ops_per_s": s.ops_per_second(),
                "median_ms": s.median_ms,
                "p99_ms": s.p99_ms,
                "errors": s.errors,
            })).collect::<Vec<_>>(),
            "server_peak_rss_kib": h.peak_rss_kib,
            "server_rss_end_kib": h.rss_end_kib,
        })),
    });
    let path = root.join("target/bench-report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    print_table(&micro, http.as_ref(), options);
    eprintln!("\nwrote {}", path.display());
    if let Some(http) = &http
        && let Some(failed) = http.scenarios.iter().find(|s| s.errors > 0)
    {
        bail!(
            "{}: {} errors, first: {}",
            failed.name,
            failed.errors,
            failed.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

/// The binary measured: `--binary`, or the release build.
static SERVER_BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn server_binary(root: &Path) -> PathBuf {
    SERVER_BINARY
        .get()
        .cloned()
        .unwrap_or_else(|| root.join("target/release/hass-auth"))
}

fn git_commit(root: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Every criterion benchmark that ran since `since`, by full id.
fn criterion_results(dir: &Path, since: SystemTime) -> Result<Vec<Micro>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    out.push(path);
                } else {
                    walk(&path, out);
                }
            }
        }
    }
    let mut dirs = Vec::new();
    walk(dir, &mut dirs);
    let mut results = Vec::new();
    for dir in dirs {
        let estimates = dir.join("estimates.json");
        let fresh = std::fs::metadata(&estimates)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m >= since);
        if !fresh {
            continue;
        }
        let read = |name: &str| -> Result<Value> {
            let path = dir.join(name);
            serde_json::from_slice(&std::fs::read(&path)?)
                .with_context(|| format!("{} is not JSON", path.display()))
        };
        let benchmark = read("benchmark.json")?;
        let estimates = read("estimates.json")?;
        results.push(Micro {
            name: benchmark["full_id"].as_str().unwrap_or("?").to_owned(),
            median_ns: estimates["median"]["point_estimate"]
                .as_f64()
                .unwrap_or(f64::NAN),
            mean_ns: estimates["mean"]["point_estimate"]
                .as_f64()
                .unwrap_or(f64::NAN),
        });
    }
    results.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(results)
}

struct HttpReport {
    scenarios: Vec<Measured>,
    peak_rss_kib: u64,
    rss_end_kib: u64,
}

const CLIENT_ID: &str = "http://127.0.0.1:8123/";
const REDIRECT_URI: &str = "http://127.0.0.1:8123/?auth_callback=1";
const CONFIG: &str = "homeassistant:
  auth_providers:
    - type: homeassistant
    - type: insecure_example
      users:
        - username: bench
          password: bench-pass
";

/// The release server on a fresh config directory; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(root: &Path) -> Result<Self> {
        Self::start_seeded(root, 0)
    }

    /// The server over a `.storage/auth` already holding `seeded` refresh tokens (of another user).
    fn start_seeded(root: &Path, seeded: usize) -> Result<Self> {
        let dir = fresh_dir(root, "bench-http", seeded)?;
        Self::start_in(root, &dir, &[])
    }

    /// The server on config directory `dir`, with more `serve` arguments.
    fn start_in(root: &Path, dir: &Path, args: &[&str]) -> Result<Self> {
        let log = std::fs::File::create(dir.join("server.log"))?;
        let mut child = Command::new(server_binary(root))
            .args(["serve", "-c"])
            .arg(dir)
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", server_binary(root).display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                bail!(
                    "the server exited; see {}",
                    dir.join("server.log").display()
                );
            };
            if let Some(addr) = line?.strip_prefix("hass-auth listening on http://") {
                break addr.parse()?;
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, addr })
    }

    /// `(VmRSS, VmHWM)` in KiB.
    fn memory(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} in /proc/<pid>/status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// A fresh config directory `target/<name>` whose `.storage/auth` holds `seeded` refresh tokens.
fn fresh_dir(root: &Path, name: &str, seeded: usize) -> Result<PathBuf> {
    let dir = root.join("target").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(".storage"))?;
    std::fs::write(dir.join("configuration.yaml"), CONFIG)?;
    if seeded > 0 {
        std::fs::write(dir.join(".storage/auth"), seeded_auth(seeded))?;
    }
    Ok(dir)
}

/// Whole sign-ins as [`whole_sign_ins`], with the stores in a fresh PostgreSQL database
/// (seeded with `hass-auth storage import`) behind `servers` servers, each connection
/// talking to one of them in turn.
fn whole_sign_ins_on_postgres(
    root: &Path,
    options: &Options,
    seeded: usize,
    servers: usize,
) -> Result<(Measured, (u64, u64))> {
    let cluster = auth_testkit::postgres::PgCluster::start();
    let url = cluster.create_database("bench");
    let seed_dir = fresh_dir(root, "bench-pg-seed", seeded)?;
    let imported = Command::new(server_binary(root))
        .args(["storage", "-c"])
        .arg(&seed_dir)
        .args(["import", "--database-url", &url])
        .output()?;
    if !imported.status.success() {
        bail!(
            "import failed: {}",
            String::from_utf8_lossy(&imported.stderr)
        );
    }
    let mut running = Vec::new();
    for i in 0..servers {
        let dir = fresh_dir(root, &format!("bench-pg-{i}"), 0)?;
        running.push(Server::start_in(root, &dir, &["--database-url", &url])?);
        if i == 0 {
            // The first sign-in creates the insecure_example user before the others start.
            tokens(&mut Conn::new(running[0].addr))?;
        }
    }
    let addrs: Vec<SocketAddr> = running.iter().map(|s| s.addr).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let load = Load {
        addr: addrs[0],
        concurrency: options.concurrency,
        warm_up: Duration::from_secs(1),
        duration: Duration::from_secs(options.seconds),
    };
    let measured = load::run(
        &format!("sign_in/insecure_example_whole@{seeded}_tokens/postgres_{servers}_servers"),
        3,
        load,
        |conn| {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            conn.retarget(addrs[i % addrs.len()]);
            Ok(())
        },
        |conn, _| tokens(conn).map(drop),
    )?;
    Ok((measured, running[0].memory()?))
}

/// `.storage/auth` with `n` refresh tokens spread over `n / 10` users (each with a credential),
/// in Home Assistant's format: the store grows in users as well as in tokens.
fn seeded_auth(n: usize) -> Vec<u8> {
    let users_n = (n / 10).max(1);
    let user = |i: usize| format!("5eed{i:028x}");
    let users: Vec<Value> = (0..users_n)
        .map(|i| {
            json!({"id": user(i), "group_ids": ["system-users"], "is_owner": false,
                "is_active": true, "name": format!("Seed {i}"), "system_generated": false,
                "local_only": false})
        })
        .collect();
    let credentials: Vec<Value> = (0..users_n)
        .map(|i| {
            json!({"id": format!("c7ed{i:028x}"), "user_id": user(i),
                "auth_provider_type": "insecure_example", "auth_provider_id": null,
                "data": {"username": format!("seed{i}")}})
        })
        .collect();
    let tokens: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": format!("{i:032x}"),
                "user_id": user(i % users_n),
                "client_id": CLIENT_ID,
                "client_name": null,
                "client_icon": null,
                "token_type": "normal",
                "created_at": "2026-12-01T00:00:00.000000+00:00",
                "access_token_expiration": 1800.0,
                "token": format!("{:0128x}", i as u128 * 0x9e37_79b9_7f4a_7c15 + 1),
                "jwt_key": format!("{:0128x}", i as u128 * 0xc2b2_ae3d_27d4_eb4f + 7),
                "last_used_at": null,
                "last_used_ip": null,
                "expire_at": 4_102_444_800.0,
                "credential_id": null,
                "version": "2024.3.3",
            })
        })
        .collect();
    let doc = json!({"version": 1, "minor_version": 1, "key": "auth", "data": {
        "users": users,
        "groups": [{"id": "system-admin", "name": "Administrators"},
            {"id": "system-users", "name": "Users"},
            {"id": "system-read-only", "name": "Read Only"}],
        "credentials": credentials,
        "refresh_tokens": tokens,
    }});
    serde_json::to_vec_pretty(&doc).expect("JSON")
}

/// Whole sign-ins (login flow, then the code exchanged for tokens: 3 requests, one new refresh
/// token each) on a server whose store already holds `seeded` refresh tokens of `seeded / 10`
/// other users.
/// Also returns the server's `(VmRSS, VmHWM)` at the end.
fn whole_sign_ins(root: &Path, options: &Options, seeded: usize) -> Result<(Measured, (u64, u64))> {
    let server = Server::start_seeded(root, seeded)?;
    let mut conn = Conn::new(server.addr);
    // The first sign-in creates the insecure_example user (concurrent ones would be refused but one).
    tokens(&mut conn)?;
    let load = Load {
        addr: server.addr,
        concurrency: options.concurrency,
        warm_up: Duration::from_secs(1),
        duration: Duration::from_secs(options.seconds),
    };
    let measured = load::run(
        &format!("sign_in/insecure_example_whole@{seeded}_tokens"),
        3,
        load,
        |_| Ok(()),
        |conn, _| tokens(conn).map(drop),
    )?;
    Ok((measured, server.memory()?))
}

/// Starts a login flow and submits the password: the finished flow's code.
fn login_flow(conn: &mut Conn, provider: &str, username: &str, password: &str) -> Result<String> {
    let started = expect(
        conn.post_json(
            "/auth/login_flow",
            &json!({"client_id": CLIENT_ID, "handler": [provider, null], "redirect_uri": REDIRECT_URI}),
        )?,
        200,
    )?
    .json()?;
    let flow_id = started["flow_id"].as_str().context("no flow_id")?;
    let done = expect(
        conn.post_json(
            &format!("/auth/login_flow/{flow_id}"),
            &json!({"client_id": CLIENT_ID, "username": username, "password": password}),
        )?,
        200,
    )?
    .json()?;
    if done["type"] != "create_entry" {
        bail!("login refused: {done}");
    }
    Ok(done["result"].as_str().context("no code")?.to_owned())
}

/// Signs in and exchanges the code: `(access token, refresh token)`.
fn tokens(conn: &mut Conn) -> Result<(String, String)> {
    let code = login_flow(conn, "insecure_example", "bench", "bench-pass")?;
    let tokens = expect(
        conn.post_form(
            "/auth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT_ID),
                ("code", &code),
            ],
        )?,
        200,
    )?
    .json()?;
    Ok((
        tokens["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned(),
        tokens["refresh_token"]
            .as_str()
            .context("refresh_token")?
            .to_owned(),
    ))
}

fn http_load(root: &Path, options: &Options) -> Result<HttpReport> {
    let mut scenarios = Vec::new();
    let (mut rss_end_kib, mut peak_rss_kib) = (0, 0);
    if !options.sign_in_only {
        (scenarios, (rss_end_kib, peak_rss_kib)) = standard_scenarios(root, options)?;
    }
    let started = Instant::now();
    for &seeded in &options.seeded {
        eprintln!("\n==> whole sign-ins with {seeded} refresh tokens pre-seeded");
        let (measured, (rss, hwm)) = whole_sign_ins(root, options, seeded)?;
        scenarios.push(measured);
        (rss_end_kib, peak_rss_kib) = (rss, peak_rss_kib.max(hwm));
        if options.postgres {
            for servers in [1, 3] {
                let (measured, (rss, hwm)) =
                    whole_sign_ins_on_postgres(root, options, seeded, servers)?;
                scenarios.push(measured);
                (rss_end_kib, peak_rss_kib) = (rss, peak_rss_kib.max(hwm));
            }
        }
    }
    eprintln!("<== whole sign-ins ({:.0?})", started.elapsed());
    Ok(HttpReport {
        scenarios,
        peak_rss_kib,
        rss_end_kib,
    })
}

/// The standard scenarios on one fresh server; also returns its `(VmRSS, VmHWM)` at the end.
fn standard_scenarios(root: &Path, options: &Options) -> Result<(Vec<Measured>, (u64, u64))> {
    let server = Server::start(root)?;
    let addr = server.addr;
    eprintln!(
        "\n==> HTTP load on {addr}: {} connections, {} s per scenario",
        options.concurrency, options.seconds
    );
    // The owner (homeassistant provider, argon2id with OWASP parameters).
    let mut conn = Conn::new(addr);
    expect(
        conn.post_json(
            "/api/onboarding/users",
            &json!({"client_id": CLIENT_ID, "name": "Bench", "username": "bench",
                "password": "bench-pass", "language": "en"}),
        )?,
        200,
    )?;
    // The insecure_example user's first sign-in creates its user (concurrent first sign-ins
    // would be refused but one).
    tokens(&mut conn)?;
    let load = Load {
        addr,
        concurrency: options.concurrency,
        warm_up: Duration::from_secs(1),
        duration: Duration::from_secs(options.seconds),
    };
    let mut scenarios = Vec::new();
    let started = Instant::now();
    scenarios.push(load::run(
        "login_flow/insecure_example",
        2,
        load,
        |_| Ok(()),
        |conn, _| login_flow(conn, "insecure_example", "bench", "bench-pass").map(drop),
    )?);
    scenarios.push(load::run(
        "login_flow/homeassistant_argon2id",
        2,
        load,
        |_| Ok(()),
        |conn, _| login_flow(conn, "homeassistant", "bench", "bench-pass").map(drop),
    )?);
    scenarios.push(load::run(
        "token/refresh_grant",
        1,
        load,
        |conn| tokens(conn).map(|(_, refresh)| refresh),
        |conn, refresh| {
            expect(
                conn.post_form(
                    "/auth/token",
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", CLIENT_ID),
                        ("refresh_token", refresh),
                    ],
                )?,
                200,
            )
            .map(drop)
        },
    )?);
    scenarios.push(load::run(
        "api/authenticated_get",
        1,
        load,
        |conn| tokens(conn).map(|(access, _)| format!("Bearer {access}")),
        |conn, bearer| expect(conn.get("/api/", &[("Authorization", bearer)])?, 200).map(drop),
    )?);
    scenarios.push(load::run(
        "api/rejected_token",
        1,
        load,
        |_| Ok(()),
        |conn, _| {
            expect(
                conn.get("/api/", &[("Authorization", "Bearer not.a.token")])?,
                401,
            )
            .map(drop)
        },
    )?);
    eprintln!("<== HTTP load ({:.0?})", started.elapsed());
    Ok((scenarios, server.memory()?))
}

fn human_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn print_table(micro: &[Micro], http: Option<&HttpReport>, options: &Options) {
    println!();
    if !micro.is_empty() {
        println!(
            "{:<48} {:>12} {:>12}",
            "micro benchmark (criterion)", "median", "mean"
        );
        for m in micro {
            println!(
                "{:<48} {:>12} {:>12}",
                m.name,
                human_ns(m.median_ns),
                human_ns(m.mean_ns)
            );
        }
        println!();
    }
    if let Some(http) = http {
        println!(
            "{:<48} {:>10} {:>10} {:>10} {:>7}",
            format!(
                "HTTP, loopback ({} connections, {} s each)",
                options.concurrency, options.seconds
            ),
            "ops/s",
            "median",
            "p99",
            "errors"
        );
        for s in &http.scenarios {
            println!(
                "{:<48} {:>10.0} {:>7.2} ms {:>7.2} ms {:>7}",
                s.name,
                s.ops_per_second(),
                s.median_ms,
                s.p99_ms,
                s.errors
            );
        }
        println!(
            "{:<48} {:>10.1} MiB (VmHWM), {:.1} MiB at the end (VmRSS)",
            "server peak memory",
            http.peak_rss_kib as f64 / 1024.0,
            http.rss_end_kib as f64 / 1024.0
        );
    }
}

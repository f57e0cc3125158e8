//! A bounded soak of the real binary: mixed traffic on loopback (sign-ins, refreshes, API calls,
//! revocations, wrong passwords, rejected tokens, and clients that walk away from their login
//! flows and authorization codes). Flows and codes expire after 1 s here
//! (`--flow-idle-timeout 1 --auth-code-lifetime 1`); once they have, the server's memory is back
//! to what it was after a warm-up with the same traffic.
//!
//! Runs for `HASS_AUTH_SOAK_SECONDS` (default 5); `cargo xtask soak --seconds 60` runs it longer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::json;

use crate::client::{self, CLIENT_ID, REDIRECT_URI};
use crate::support::{BASIC_CONFIG, serve, write_config};

/// Concurrent clients.
const CLIENTS: usize = 12;
/// Flow idle timeout and code lifetime given to the server, in seconds.
const EXPIRY: u64 = 1;

fn soak_duration() -> Duration {
    let seconds = std::env::var("HASS_AUTH_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(seconds)
}

/// What the clients did.
#[derive(Default)]
struct Counts {
    sign_ins: AtomicU64,
    refreshes: AtomicU64,
    api_calls: AtomicU64,
    revocations: AtomicU64,
    rejected: AtomicU64,
    wrong_passwords: AtomicU64,
    abandoned_flows: AtomicU64,
    abandoned_codes: AtomicU64,
}

impl Counts {
    fn total(&self) -> u64 {
        [
            &self.sign_ins,
            &self.refreshes,
            &self.api_calls,
            &self.revocations,
            &self.rejected,
            &self.wrong_passwords,
            &self.abandoned_flows,
            &self.abandoned_codes,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// `(VmRSS, VmHWM)` of `pid` in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn start_flow(addr: SocketAddr) -> String {
    let response = Request::post("/auth/login_flow")
        .json(
            &json!({"client_id": CLIENT_ID, "handler": ["insecure_example", null],
            "redirect_uri": REDIRECT_URI}),
        )
        .send(addr)
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["flow_id"].as_str().unwrap().to_owned()
}

/// One client's mix of requests until `until`; returns a few flow ids it abandoned.
async fn client(
    addr: SocketAddr,
    worker: usize,
    until: Instant,
    counts: Arc<Counts>,
) -> Vec<String> {
    let mut abandoned = Vec::new();
    let mut n = worker;
    while Instant::now() < until {
        n += 1;
        match n % 6 {
            0 => {
                let tokens = client::login(addr, json!(["insecure_example", null]), "demo", "demo")
                    .await
                    .unwrap();
                count(&counts.sign_ins);
                let refresh = tokens["refresh_token"].as_str().unwrap();
                for _ in 0..2 {
                    assert_eq!(client::refresh(addr, refresh).await.unwrap().status, 200);
                    count(&counts.refreshes);
                }
                let access = tokens["access_token"].as_str().unwrap();
                assert_eq!(client::api_status(addr, access).await.unwrap(), 200);
                count(&counts.api_calls);
                client::revoke(addr, refresh).await.unwrap();
                count(&counts.revocations);
            }
            1 => {
                let flow_id = start_flow(addr).await;
                if abandoned.len() < 20 {
                    abandoned.push(flow_id);
                }
                count(&counts.abandoned_flows);
            }
            2 => {
                let code = client::login_code(
                    addr,
                    json!(["insecure_example", null]),
                    "demo",
                    "demo",
                    None,
                )
                .await
                .unwrap();
                assert!(code.is_some());
                count(&counts.abandoned_codes);
            }
            3 => {
                assert_eq!(client::api_status(addr, "not.a.token").await.unwrap(), 401);
                count(&counts.rejected);
            }
            4 => {
                let code = client::login_code(
                    addr,
                    json!(["insecure_example", null]),
                    "demo",
                    "nope",
                    None,
                )
                .await
                .unwrap();
                assert!(code.is_none());
                count(&counts.wrong_passwords);
            }
            _ => {
                let providers = Request::get("/auth/providers").send(addr).await;
                assert_eq!(providers.status, 200);
                count(&counts.api_calls);
            }
        }
    }
    abandoned
}

async fn traffic(addr: SocketAddr, for_: Duration, counts: &Arc<Counts>) -> Vec<String> {
    let until = Instant::now() + for_;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|worker| tokio::spawn(client(addr, worker, until, counts.clone())))
        .collect();
    let mut abandoned = Vec::new();
    for client in clients {
        abandoned.extend(client.await.expect("a client failed"));
    }
    abandoned
}

/// Waits until flows and codes expired and the housekeeping ran, then samples memory.
async fn settled_memory(pid: u32) -> (u64, u64) {
    tokio::time::sleep(Duration::from_secs(2 * EXPIRY + 1)).await;
    memory(pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_traffic_soak_returns_to_its_memory_baseline() {
    let duration = soak_duration();
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap().to_owned();
    let expiry = EXPIRY.to_string();
    let server = serve(
        config.path(),
        &[
            "-c",
            &dir,
            "--flow-idle-timeout",
            &expiry,
            "--auth-code-lifetime",
            &expiry,
        ],
    )
    .await
    .unwrap_or_else(|o| panic!("{}", o.stderr));
    let addr = server.addr;
    let pid = server.pid();
    client::onboard(addr, "owner", "owner-pw").await;
    client::login(addr, json!(["insecure_example", null]), "demo", "demo")
        .await
        .unwrap();

    let warm_up = Arc::new(Counts::default());
    traffic(addr, (duration / 4).max(Duration::from_secs(2)), &warm_up).await;
    let (baseline, _) = settled_memory(pid).await;

    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let abandoned = traffic(addr, duration, &counts).await;
    let elapsed = started.elapsed();
    let (during, _) = memory(pid);
    let (after, peak) = settled_memory(pid).await;

    // Abandoned flows are gone.
    for flow_id in &abandoned {
        let response = Request::get(&format!("/auth/login_flow/{flow_id}"))
            .send(addr)
            .await;
        assert_eq!(response.status, 404, "abandoned flow {flow_id} expired");
    }
    let total = counts.total();
    eprintln!(
        "soak: {total} operations in {elapsed:.1?} ({:.0}/s): {} sign-ins, {} refreshes, {} API calls, {} revocations, {} rejected, {} wrong passwords, {} abandoned flows, {} abandoned codes; VmRSS baseline {baseline} KiB, end of traffic {during} KiB, settled {after} KiB, VmHWM {peak} KiB",
        total as f64 / elapsed.as_secs_f64(),
        counts.sign_ins.load(Ordering::Relaxed),
        counts.refreshes.load(Ordering::Relaxed),
        counts.api_calls.load(Ordering::Relaxed),
        counts.revocations.load(Ordering::Relaxed),
        counts.rejected.load(Ordering::Relaxed),
        counts.wrong_passwords.load(Ordering::Relaxed),
        counts.abandoned_flows.load(Ordering::Relaxed),
        counts.abandoned_codes.load(Ordering::Relaxed),
    );
    assert!(total > 100, "the soak did something");
    let allowance = (baseline / 5).max(4 * 1024);
    assert!(
        after <= baseline + allowance,
        "memory returns to its baseline: {after} KiB after, {baseline} KiB before (allowance {allowance} KiB)"
    );
    assert_eq!(server.stop().await, 0);
}

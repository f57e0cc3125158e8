//! The programs a login runs: the processes they start do not outlive them, and at most
//! `max_concurrent` run at once.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use provider_command_line::CommandError;
use serde_json::json;

use crate::common::{Env, tool};

/// Whether process `pid` is gone (or a zombie waiting for a reaper: it runs no more).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Polls until `pid` is gone; panics after 10 s.
fn wait_gone(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(pid) {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the pid a script wrote to `file`.
fn pid_in(file: &Path) -> String {
    let pid = std::fs::read_to_string(file)
        .expect("pid file")
        .trim()
        .to_owned();
    assert!(!pid.is_empty(), "the script started its child");
    pid
}

#[tokio::test]
async fn a_timed_out_program_takes_the_processes_it_started_with_it() {
    // The child neither shares the pipes nor is waited for by anyone but the script.
    let body = format!(
        r#"{sleep} 60 >/dev/null 2>&1 </dev/null &
echo $! > "$0.child"
wait"#,
        sleep = tool("sleep")
    );
    let env = Env::with_script(&body, json!({"timeout": 1})).await;
    let error = env
        .cl()
        .validate_login("alice", "secret")
        .await
        .expect_err("timed out");
    assert!(matches!(error, CommandError::TimedOut { .. }), "{error:?}");
    let child = pid_in(&env.dir().join("auth.sh.child"));
    wait_gone(&child);
}

#[tokio::test]
async fn processes_left_behind_by_a_finished_program_are_killed() {
    for exit in ["0", "1"] {
        let body = format!(
            r#"{sleep} 60 >/dev/null 2>&1 </dev/null &
echo $! > "$0.child"
exit {exit}"#,
            sleep = tool("sleep")
        );
        let env = Env::with_script(&body, json!({})).await;
        let outcome = env.cl().validate_login("alice", "secret").await;
        assert_eq!(outcome.is_ok(), exit == "0", "exit {exit}: {outcome:?}");
        let child = std::fs::read_to_string(env.dir().join("auth.sh.child")).expect("pid file");
        wait_gone(child.trim());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_concurrent_programs_run_at_once() {
    const LOGINS: usize = 10;
    const MAX: usize = 3;
    // Each program marks itself running, logs how many are running (itself included), then
    // holds its slot until the test releases all of them.
    let body = format!(
        r#"dir="$0.d"
: > "$dir/running.$$"
{ls} "$dir" | {grep} -c '^running\.' >> "$dir/counts.$$"
while [ ! -e "$dir/release" ]; do {sleep} 0.02; done
{rm} "$dir/running.$$"
: > "$dir/done.$$""#,
        ls = tool("ls"),
        grep = tool("grep"),
        sleep = tool("sleep"),
        rm = tool("rm"),
    );
    let env = Env::with_script(&body, json!({"max_concurrent": MAX, "timeout": 30})).await;
    let dir = env.dir().join("auth.sh.d");
    std::fs::create_dir(&dir).expect("dir");
    let count = |prefix: &str| {
        std::fs::read_dir(&dir)
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(prefix))
            })
            .count()
    };
    let logins = join_all((0..LOGINS).map(|_| env.cl().validate_login("alice", "pw")));
    let release = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while count("counts.") < MAX {
            assert!(Instant::now() < deadline, "{MAX} programs started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // MAX programs hold their slots: any program beyond the bound would start now.
        std::fs::write(dir.join("release"), "").expect("release");
    };
    let (outcomes, ()) = tokio::join!(logins, release);
    for outcome in &outcomes {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    assert_eq!(count("done."), LOGINS, "every program ran");
    let mut most = 0;
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let entry = entry.expect("entry");
        if entry.file_name().to_string_lossy().starts_with("counts.") {
            let text = std::fs::read_to_string(entry.path()).expect("counts");
            let seen: usize = text.trim().parse().expect("a count");
            most = most.max(seen);
        }
    }
    assert!(most <= MAX, "{most} programs ran at once (bound {MAX})");
}

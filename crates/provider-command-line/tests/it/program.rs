//! Running the program: environment, arguments, exit codes, missing programs, the timeout and
//! bounded output.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use provider_command_line::{CommandError, MAX_OUTPUT_BYTES};
use serde_json::json;

use crate::common::{ALICE_ONLY, Env, assert_invalid_auth, script, tool};

#[tokio::test]
async fn environment_holds_only_username_and_password() {
    let body = format!(
        r#"{env} > "$0.env"
for arg in "$@"; do echo "[$arg]"; done > "$0.args""#,
        env = tool("env")
    );
    let env = Env::with_script(&body, json!({"args": ["--strict", "two words", ""]})).await;
    env.cl()
        .validate_login("alice", "p w=\"x\"$HOME")
        .await
        .expect("accepted");
    let seen = std::fs::read_to_string(env.dir().join("auth.sh.env")).expect("env file");
    let names: Vec<&str> = seen
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(seen.lines().any(|l| l == "username=alice"), "{seen}");
    assert!(
        seen.lines().any(|l| l == "password=p w=\"x\"$HOME"),
        "{seen}"
    );
    for name in &names {
        // The shell itself may add PWD; nothing may come from the server's environment.
        assert!(
            ["username", "password", "PWD"].contains(name),
            "unexpected {name} in {seen}"
        );
    }
    assert!(
        !names.contains(&"PATH") && !names.contains(&"HOME"),
        "{seen}"
    );
    let args = std::fs::read_to_string(env.dir().join("auth.sh.args")).expect("args file");
    assert_eq!(args, "[--strict]\n[two words]\n[]\n");
}

#[tokio::test]
async fn nonzero_exit_and_signals_refuse() {
    let env = Env::with_script(
        r#"[ "$username" = "sig" ] && kill -9 $$; exit 3"#,
        json!({}),
    )
    .await;
    match env.cl().validate_login("alice", "pw").await {
        Err(CommandError::Exit { status, command }) => {
            assert_eq!(status.code(), Some(3));
            assert_eq!(command, env.dir().join("auth.sh").display().to_string());
        }
        other => panic!("expected an exit error, got {other:?}"),
    }
    match env.cl().validate_login("sig", "pw").await {
        Err(CommandError::Exit { status, .. }) => assert_eq!(status.code(), None),
        other => panic!("expected a signal, got {other:?}"),
    }
    assert_invalid_auth(&env.login("alice", "pw").await);
}

#[tokio::test]
async fn missing_or_non_executable_programs_refuse() {
    let config = auth_testkit::TempConfig::empty();
    let missing = config.path().join("no-such-program");
    let env = Env::with_keys(config, json!({"command": missing})).await;
    let error = env
        .cl()
        .validate_login("alice", "secret")
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, CommandError::Spawn { source, .. } if source.kind() == ErrorKind::NotFound),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot run {}: ", missing.display())),
        "the message names the path: {error}"
    );
    assert_invalid_auth(&env.login("alice", "secret").await);

    let config = auth_testkit::TempConfig::empty();
    let path = script(config.path(), "auth.sh", ALICE_ONLY);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let env = Env::with_keys(config, json!({"command": path})).await;
    let error = env
        .cl()
        .validate_login("alice", "secret")
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, CommandError::Spawn { source, .. } if source.kind() == ErrorKind::PermissionDenied),
        "{error:?}"
    );
    assert_invalid_auth(&env.login("alice", "secret").await);
}

#[tokio::test]
async fn nul_bytes_cannot_reach_the_program() {
    let env = Env::with_script("exit 0", json!({})).await;
    let error = env
        .cl()
        .validate_login("alice", "se\0cret")
        .await
        .expect_err("refused");
    assert!(matches!(error, CommandError::Spawn { .. }), "{error:?}");
    assert!(
        !error.to_string().contains("cret"),
        "no password in {error}"
    );
    assert_invalid_auth(&env.login("al\0ice", "x").await);
}

#[tokio::test]
async fn a_hung_program_is_killed_at_the_timeout() {
    let body = format!(
        r#"echo $$ > "$0.pid"
exec {sleep} 30"#,
        sleep = tool("sleep")
    );
    let env = Env::with_script(&body, json!({"timeout": 1})).await;
    assert_eq!(env.cl().config().timeout, Duration::from_secs(1));
    let error = env
        .cl()
        .validate_login("alice", "secret")
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, CommandError::TimedOut { timeout, .. } if *timeout == Duration::from_secs(1)),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("did not finish within 1s and was killed"),
        "{error}"
    );
    let pid = std::fs::read_to_string(env.dir().join("auth.sh.pid")).expect("pid file");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the program was killed and reaped"
    );
}

#[tokio::test]
async fn output_is_bounded_and_the_program_still_finishes() {
    // ~100 KiB of padding after the first meta line, then a line past the limit.
    let body = r##"echo "name = Early"
i=0
while [ $i -lt 2000 ]; do
  echo "# padding padding padding padding padding padding padding"
  echo "padding padding padding padding padding padding padding padding padding" >&2
  i=$((i+1))
done
echo "name = Late"
echo "group = system-users""##;
    let env = Env::with_script(body, json!({"meta": true})).await;
    env.cl()
        .validate_login("alice", "pw")
        .await
        .expect("accepted");
    let meta = env.cl().meta_for("alice").expect("meta");
    assert_eq!(meta.name.as_deref(), Some("Early"));
    assert_eq!(
        meta.group, None,
        "lines past {MAX_OUTPUT_BYTES} bytes are ignored"
    );
}

#[tokio::test]
async fn the_program_gets_no_stdin() {
    // With stdin at /dev/null, `read` ends at once instead of waiting.
    let body = r#"read line; [ -z "$line" ] || exit 1; echo "name = no input""#;
    let env = Env::with_script(body, json!({"meta": true})).await;
    env.cl()
        .validate_login("alice", "pw")
        .await
        .expect("accepted");
    assert_eq!(
        env.cl().meta_for("alice").and_then(|m| m.name).as_deref(),
        Some("no input")
    );
}

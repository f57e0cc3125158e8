//! `hass-auth ban list | remove`, and Home Assistant's `ip_bans.yaml` read at start.

use auth_testkit::TempConfig;

use crate::support::{BASIC_CONFIG, run, serve, write_config};

/// An `ip_bans.yaml` as Home Assistant writes it: an old ban (Home Assistant keeps it forever),
/// a recent one, an IPv6 one and an entry without a date.
fn ha_ban_file(recent: &str) -> String {
    format!(
        "\n203.0.113.7:\n  banned_at: '2025-03-01T10:00:00.123456+00:00'\n\
         \n198.51.100.9:\n  banned_at: '{recent}'\n\
         \n2001:db8:1:2::a:\n  banned_at: '{recent}'\n\
         \n192.0.2.1: {{}}\n"
    )
}

fn now_iso() -> String {
    auth_core::timefmt::to_iso(time::OffsetDateTime::now_utc())
}

#[tokio::test]
async fn ban_list_and_remove() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    let file = config.path().join("ip_bans.yaml");
    std::fs::write(&file, ha_ban_file(&now_iso())).unwrap();
    let out = run(config.path(), &["ban", "-c", dir, "list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<(&str, &str)> = out
        .stdout
        .lines()
        .map(|l| {
            let mut parts = l.split('\t');
            (parts.next().unwrap(), parts.nth(1).unwrap())
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("203.0.113.7", "expired"),
            ("198.51.100.9", "in force"),
            ("2001:db8:1:2::a", "in force"),
            ("192.0.2.1", "in force"),
        ],
        "{}",
        out.stdout
    );

    // Another address of the same /64 lifts the IPv6 ban.
    let out = run(
        config.path(),
        &["ban", "-c", dir, "remove", "2001:db8:1:2::ffff"],
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Removed the ban of 2001:db8:1:2::a\n"),
        "{}",
        out.stderr
    );
    let out = run(config.path(), &["ban", "-c", dir, "remove", "198.51.100.9"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(config.path(), &["ban", "-c", dir, "remove", "198.51.100.9"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "198.51.100.9 is not banned\n")
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("203.0.113.7:") && text.contains("192.0.2.1:"),
        "{text}"
    );
    assert!(
        !text.contains("198.51.100.9") && !text.contains("2001:db8"),
        "{text}"
    );
    let out = run(config.path(), &["ban", "-c", dir, "remove", "not-an-ip"]).await;
    assert_eq!(out.code, 2, "a usage error: {}", out.stderr);

    // While a server holds the directory, removing is refused (it would undo nothing in its
    // memory and race its appends); listing still works.
    let server = serve(config.path(), &["-c", dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let out = run(config.path(), &["ban", "-c", dir, "remove", "192.0.2.1"]).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("locked by another process"),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("192.0.2.1:")
    );
    let out = run(config.path(), &["ban", "-c", dir, "list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn home_assistant_bans_older_than_ban_duration_are_dropped_with_a_warning_naming_them() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap();
    std::fs::write(config.path().join("ip_bans.yaml"), ha_ban_file(&now_iso())).unwrap();
    let server = serve(config.path(), &["-c", dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let wanted = "not loading 1 ban(s) older than ban_duration: 203.0.113.7 (banned at 2025-03-01T10:00:00.123456+00:00)";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.stderr().contains(wanted) {
        assert!(std::time::Instant::now() < deadline, "{}", server.stderr());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(server.stop().await, 0);

    // With `ban_duration: forever`, Home Assistant's bans are all kept.
    write_config(
        config.path(),
        &format!("{BASIC_CONFIG}http:\n  ban_duration: forever\n"),
    );
    let server = serve(config.path(), &["-c", dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    assert!(
        !server.stderr().contains("not loading"),
        "{}",
        server.stderr()
    );
    assert_eq!(server.stop().await, 0);
}

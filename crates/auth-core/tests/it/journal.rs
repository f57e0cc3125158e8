//! The file store's journal: durable changes are appended (O(change)), concurrent ones share an
//! append, a restart replays them, a torn tail is dropped, damage in the middle is refused, and a
//! clean stop leaves exactly Home Assistant's format.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth_core::{AuthManager, NewRefreshToken, RefreshToken, StoredDocument};
use auth_testkit::TempConfig;

use crate::support::{NOW, fresh, manager_in};

fn segments(dir: &Path) -> Vec<PathBuf> {
    auth_testkit::journal_segments(dir)
}

fn journal_records(dir: &Path) -> usize {
    segments(dir)
        .iter()
        .map(|p| {
            std::fs::read(p)
                .unwrap()
                .iter()
                .filter(|b| **b == b'\n')
                .count()
        })
        .sum()
}

async fn new_token(manager: &AuthManager, user_id: &str) -> Arc<RefreshToken> {
    manager
        .create_refresh_token(
            user_id,
            NewRefreshToken {
                client_id: Some("http://x/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_sign_in_appends_its_token_instead_of_rewriting_the_file() {
    let (config, clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("Journaled".into()), vec!["system-admin".into()], false)
        .await
        .unwrap();
    for _ in 0..20 {
        new_token(&manager, &user.id).await;
    }
    let main = config.storage_dir().join("auth");
    let main_before = std::fs::read(&main).ok();
    let journal_before: u64 = segments(&config.storage_dir())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let token = new_token(&manager, &user.id).await;
    let journal_after: u64 = segments(&config.storage_dir())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(
        std::fs::read(&main).ok(),
        main_before,
        "a new token does not rewrite .storage/auth"
    );
    let grown = journal_after - journal_before;
    assert!(
        grown > 0 && grown < 1024,
        "the journal grows by one token's record, not by all tokens: {grown} bytes"
    );
    // A process started after a kill -9 sees it (the journal is replayed).
    let reread = manager_in(&config, &clock).await;
    assert_eq!(
        reread.refresh_token_by_value(&token.token).unwrap().id,
        token.id
    );
    assert_eq!(reread.refresh_tokens_of(&user.id).len(), 21);
    assert_eq!(
        reread.store().read(|d| d.to_json()),
        manager.store().read(|d| d.to_json())
    );
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_changes_share_one_append() {
    let (config, _clock, manager) = fresh().await;
    let manager = Arc::new(manager);
    let user = manager
        .create_user(Some("Busy".into()), vec!["system-admin".into()], false)
        .await
        .unwrap();
    let before = journal_records(&config.storage_dir());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let manager = manager.clone();
            let user_id = user.id.clone();
            tokio::spawn(async move { new_token(&manager, &user_id).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let appended = journal_records(&config.storage_dir()) - before;
    eprintln!("64 concurrent sign-ins: {appended} journal appends");
    // The first change is written alone; the 63 made while it was written share the next one.
    assert!(
        (1..=4).contains(&appended),
        "64 concurrent sign-ins took {appended} journal appends (and fsyncs)"
    );
    let reread = manager_in(&config, &auth_testkit::clock_at(NOW)).await;
    assert_eq!(reread.refresh_tokens_of(&user.id).len(), 64);
}

#[tokio::test]
async fn a_clean_stop_leaves_exactly_home_assistants_format() {
    let config = TempConfig::from_fixture("ha-2026.2.3");
    let clock = auth_testkit::clock_at(NOW);
    let manager = manager_in(&config, &clock).await;
    let owner = manager.owner().unwrap();
    let token = new_token(&manager, &owner.id).await;
    manager.remove_refresh_token(&token.id).await.unwrap();
    let kept = new_token(&manager, &owner.id).await;
    assert!(!segments(&config.storage_dir()).is_empty());
    manager.flush().await.unwrap();
    assert_eq!(
        segments(&config.storage_dir()),
        Vec::<PathBuf>::new(),
        "no journal after a clean stop"
    );
    let bytes = std::fs::read(config.storage_dir().join("auth")).unwrap();
    let expected = StoredDocument::new("auth", 1, 1, manager.store().read(|d| d.to_json()));
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        String::from_utf8(expected.to_bytes()).unwrap()
    );
    let reread = manager_in(&config, &clock).await;
    assert!(reread.refresh_token(&token.id).is_none());
    assert!(reread.refresh_token(&kept.id).is_some());
}

/// Appends `tail` to the newest segment, as a power cut in the middle of a write could leave it.
fn damage_tail(dir: &Path, tail: &[u8]) {
    use std::io::Write;
    let last = segments(dir).pop().expect("a journal segment");
    let mut file = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    file.write_all(tail).unwrap();
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_never_a_refusal_to_start() {
    for tail in [
        &b"3f2a9c01d4e5b6a7 {\"put\":[{\"id\":\"half"[..],
        &[0u8; 700][..],
        &b"0000000000000000 {\"del\":[]}\n"[..],
    ] {
        let (config, clock, manager) = fresh().await;
        let user = manager
            .create_user(Some("Torn".into()), vec![], false)
            .await
            .unwrap();
        let token = new_token(&manager, &user.id).await;
        damage_tail(&config.storage_dir(), tail);
        let reread = manager_in(&config, &clock).await;
        assert!(reread.refresh_token(&token.id).is_some());
        // The next run appends to a new segment, so the torn record never sits in the middle.
        let second = new_token(&reread, &user.id).await;
        let again = manager_in(&config, &clock).await;
        assert!(again.refresh_token(&second.id).is_some());
        assert!(again.refresh_token(&token.id).is_some());
    }
}

#[tokio::test]
async fn a_damaged_record_in_the_middle_is_refused_naming_file_and_offset() {
    let (config, _clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("Middle".into()), vec![], false)
        .await
        .unwrap();
    new_token(&manager, &user.id).await;
    new_token(&manager, &user.id).await;
    let segment = segments(&config.storage_dir()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let second_line = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    bytes[second_line + 30] ^= 0x20;
    std::fs::write(&segment, &bytes).unwrap();
    let error = AuthManager::builder(config.storage())
        .build()
        .await
        .expect_err("a journal damaged in the middle is refused");
    let message = error.to_string();
    assert!(
        message.contains(&segment.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&format!("byte offset {second_line}")),
        "{message}"
    );
    assert!(segment.exists(), "the damaged journal is kept");
}

#[tokio::test]
async fn the_journal_is_compacted_into_the_file_once_it_outgrows_it() {
    let (config, clock, manager) = fresh().await;
    let user = manager
        .create_user(Some("Growing".into()), vec![], false)
        .await
        .unwrap();
    // Records of ~700 bytes: the 1 MiB floor is crossed after ~1500 sign-ins.
    let mut last = None;
    for _ in 0..1600 {
        last = Some(new_token(&manager, &user.id).await);
    }
    // Compaction runs in the background: wait (bounded) until the journal shrank.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let journal: u64 = segments(&config.storage_dir())
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        if journal < 1 << 20 && config.storage_dir().join("auth").exists() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the journal was not compacted: {journal} bytes"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.storage_dir().join("auth")).unwrap()).unwrap();
    assert!(on_disk["data"]["refresh_tokens"].as_array().unwrap().len() >= 1400);
    let reread = manager_in(&config, &clock).await;
    assert_eq!(reread.refresh_tokens_of(&user.id).len(), 1600);
    assert!(reread.refresh_token(&last.unwrap().id).is_some());
}

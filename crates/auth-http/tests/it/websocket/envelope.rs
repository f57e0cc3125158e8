//! The command envelope: ids, unknown commands, schema errors, batches, closing frames.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{Ws, error};
use crate::harness::onboarded;

#[tokio::test]
async fn malformed_envelopes_are_invalid_format() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    let malformed = json!({"code": "invalid_format", "message": "Message incorrectly formatted."});
    for (message, id) in [
        (json!({"type": "auth/current_user"}), json!(null)),
        (json!({"id": 0, "type": "auth/current_user"}), json!(0)),
        (json!({"id": "7", "type": "auth/current_user"}), json!("7")),
        (json!({"id": 1.5, "type": "auth/current_user"}), json!(1.5)),
        (json!({"id": 3}), json!(3)),
        (json!({"id": 4, "type": ""}), json!(4)),
        (json!({"id": 5, "type": 5}), json!(5)),
        (
            json!({"id": true, "type": "auth/current_user"}),
            json!(true),
        ),
        // Ids are positive: a negative one is malformed, not a reused one.
        (json!({"id": -1, "type": "auth/current_user"}), json!(-1)),
        // A message that is not an object is answered with id 0.
        (json!("hello"), json!(0)),
        (json!(42), json!(0)),
        (json!(null), json!(0)),
        (json!([["nested"]]), json!(0)),
    ] {
        ws.send(message).await;
        assert_eq!(
            ws.recv().await,
            json!({"id": id, "type": "result", "success": false, "error": malformed})
        );
    }
    // None of these used up an id.
    ws.send(json!({"id": 1, "type": "auth/current_user"})).await;
    assert_eq!(ws.recv().await["success"], true);
}

#[tokio::test]
async fn ids_must_increase() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    ws.send(json!({"id": 5, "type": "auth/current_user"})).await;
    assert_eq!(ws.recv().await["success"], true);
    for id in [5, 4, 1] {
        ws.send(json!({"id": id, "type": "auth/current_user"}))
            .await;
        assert_eq!(
            ws.recv().await,
            json!({"id": id, "type": "result", "success": false,
                   "error": {"code": "id_reuse", "message": "Identifier values have to increase."}})
        );
    }
    // A negative or zero id is malformed even after others (not `id_reuse`).
    for id in [-1, 0, -6] {
        ws.send(json!({"id": id, "type": "auth/current_user"}))
            .await;
        assert_eq!(
            ws.recv().await,
            json!({"id": id, "type": "result", "success": false,
                   "error": {"code": "invalid_format", "message": "Message incorrectly formatted."}})
        );
    }
    ws.send(json!({"id": 6, "type": "auth/current_user"})).await;
    assert_eq!(ws.recv().await["success"], true);
    // Inside a batch, a non-object item is answered with id 0 too.
    ws.send(json!([{"id": 7, "type": "auth/current_user"}, "x"]))
        .await;
    assert_eq!(ws.recv().await["success"], true);
    assert_eq!(
        ws.recv().await,
        json!({"id": 0, "type": "result", "success": false,
               "error": {"code": "invalid_format", "message": "Message incorrectly formatted."}})
    );
}

#[tokio::test]
async fn unknown_commands() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    for kind in ["get_states", "auth", "auth/current_user/"] {
        ws.send(json!({"id": 1, "type": kind})).await;
        assert_eq!(
            ws.recv().await,
            json!({"id": 1, "type": "result", "success": false,
                   "error": {"code": "unknown_command", "message": "Unknown command."}})
        );
    }
    // As in HA, an unknown command does not use up its id.
    ws.send(json!({"id": 1, "type": "auth/current_user"})).await;
    assert_eq!(ws.recv().await["success"], true);
}

#[tokio::test]
async fn schemas_are_strict() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    assert_eq!(
        ws.err(json!({"type": "config/auth/create", "name": "X", "system_generated": true}))
            .await,
        error(
            "invalid_format",
            "not a valid option at 'system_generated'. Got True"
        )
    );
    assert_eq!(
        ws.err(json!({"type": "auth/long_lived_access_token", "client_name": "GPS"}))
            .await,
        error(
            "invalid_format",
            "required key not provided at 'lifespan'. Got None"
        )
    );
    assert_eq!(
        ws.err(
            json!({"type": "auth/long_lived_access_token", "client_name": "GPS", "lifespan": "365"})
        )
        .await,
        error("invalid_format", "expected int at 'lifespan'. Got '365'")
    );
    assert_eq!(
        ws.err(json!({"type": "auth/current_user", "verbose": false}))
            .await,
        error(
            "invalid_format",
            "not a valid option at 'verbose'. Got False"
        )
    );
    assert_eq!(
        ws.err(json!({"type": "config/auth/update", "user_id": "x", "group_ids": ["a", 1]}))
            .await,
        error("invalid_format", "expected str at 'group_ids[1]'. Got 1")
    );
    // A schema error uses up the id (HA updates its last id after handler errors).
    let id = ws.next_id() - 1;
    ws.send(json!({"id": id, "type": "auth/current_user"}))
        .await;
    assert_eq!(ws.recv().await["error"]["code"], "id_reuse");
}

#[tokio::test]
async fn a_list_of_messages_is_a_batch() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    ws.send(json!([
        {"id": 1, "type": "auth/current_user"},
        {"id": 2, "type": "nope"},
        {"id": 1, "type": "auth/current_user"},
    ]))
    .await;
    assert_eq!(ws.recv().await["success"], true);
    assert_eq!(ws.recv().await["error"]["code"], "unknown_command");
    assert_eq!(ws.recv().await["error"]["code"], "id_reuse");
}

#[tokio::test]
async fn invalid_json_and_binary_frames_close_an_authenticated_socket() {
    let (server, owner) = onboarded().await;
    let mut ws = Ws::authed(&server, &owner).await;
    ws.send_text("{\"id\": 1,").await;
    ws.expect_closed().await;

    let mut ws = Ws::authed(&server, &owner).await;
    ws.send_frame(Message::binary(b"{}".to_vec())).await;
    ws.expect_closed().await;

    // After auth the limit is 1 MiB: 100 KiB is fine (and a schema error), 2 MiB closes.
    let mut ws = Ws::authed(&server, &owner).await;
    let big = "x".repeat(100 * 1024);
    assert_eq!(
        ws.err(json!({"type": "auth/sign_path", "path": "/api/", "pad": big}))
            .await["code"],
        "invalid_format"
    );
    let huge = json!({"id": 99, "type": "auth/current_user", "pad": "x".repeat(2 * 1024 * 1024)});
    // The server may hang up while the frame is still being written.
    let _ = futures_util::SinkExt::send(&mut ws.stream, Message::text(huge.to_string())).await;
    ws.expect_closed().await;
}

//! FlowManager lifecycle: start, configure, finish, abort, validation, concurrency,
//! limits and idle expiry.

use std::sync::Arc;
use std::time::Duration;

use flow_engine::{FlowError, FlowLimits, FlowManager, FlowResult, InvalidInput};
use serde_json::{Value, json};

use crate::common::*;

fn ha() -> Value {
    json!(["homeassistant", null])
}

fn limits(max_flows: usize, idle_secs: u64) -> FlowLimits {
    FlowLimits {
        max_flows,
        idle_timeout: Duration::from_secs(idle_secs),
        ..FlowLimits::default()
    }
}

#[test]
fn default_limits() {
    let limits = FlowLimits::default();
    assert_eq!(limits.max_flows, 1024);
    assert_eq!(limits.max_flows_per_owner, 32);
    assert_eq!(limits.idle_timeout, Duration::from_secs(600));
}

#[tokio::test]
async fn start_stores_the_flow_and_shows_init() {
    let manager = manager::<String>(FlowLimits::default());
    let (flow, calls) = Login::new(false);
    let shown = manager
        .start(ha(), "ctx".to_owned(), Box::new(flow))
        .await
        .unwrap();

    assert_eq!(shown.flow_id, id(1));
    assert_eq!(shown.handler, ha());
    assert_eq!(shown.result.step_id(), Some("init"));
    assert_eq!(*calls.lock(), vec![("init".to_owned(), None)]);
    assert_eq!(manager.len(), 1);
    assert!(!manager.is_empty());
    assert_eq!(manager.current(&id(1)), Some(shown));
    assert_eq!(manager.context(&id(1)), Some("ctx".to_owned()));
    assert_eq!(manager.handler(&id(1)), Some(ha()));
    assert_eq!(manager.in_progress(), vec![(id(1), ha(), "ctx".to_owned())]);
}

#[tokio::test]
async fn configure_to_the_end_removes_the_flow() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, calls) = Login::new(false);
    let shown = manager.start(ha(), (), Box::new(flow)).await.unwrap();

    let done = manager
        .configure(
            &shown.flow_id,
            input(json!({"password": "secret", "username": "alice"})),
        )
        .await
        .unwrap();
    assert_eq!(done.flow_id, shown.flow_id);
    assert_eq!(done.handler, ha());
    assert_eq!(
        done.result,
        FlowResult::create_entry(json!({"username": "alice"}))
    );
    // The flow got validated input: schema order, default inserted.
    assert_eq!(
        text(&calls.lock()[1].1),
        r#"{"username":"alice","password":"secret","remember":false}"#
    );

    assert!(manager.is_empty());
    assert_eq!(manager.current(&shown.flow_id), None);
    assert!(matches!(
        manager.configure(&shown.flow_id, None).await,
        Err(FlowError::UnknownFlow)
    ));
    assert!(matches!(
        manager.abort(&shown.flow_id),
        Err(FlowError::UnknownFlow)
    ));
}

#[tokio::test]
async fn wrong_password_keeps_the_flow_with_errors_then_mfa_then_finish() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, calls) = Login::new(true);
    let flow_id = manager
        .start(ha(), (), Box::new(flow))
        .await
        .unwrap()
        .flow_id;

    let wrong = manager
        .configure(
            &flow_id,
            input(json!({"username": "a", "password": "nope"})),
        )
        .await
        .unwrap();
    assert_eq!(wrong.to_json()["errors"], json!({"base": "invalid_auth"}));
    assert_eq!(manager.current(&flow_id), Some(wrong));

    let mfa = manager
        .configure(
            &flow_id,
            input(json!({"username": "a", "password": "secret"})),
        )
        .await
        .unwrap();
    assert_eq!(mfa.result.step_id(), Some("mfa"));
    assert_eq!(manager.current(&flow_id), Some(mfa));

    // The mfa step now validates against the code schema: credentials are extra keys.
    let err = manager
        .configure(
            &flow_id,
            input(json!({"username": "a", "password": "secret"})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::InvalidInput(_)));

    let bad_code = manager
        .configure(&flow_id, input(json!({"code": "000000"})))
        .await
        .unwrap();
    assert_eq!(
        bad_code.to_json()["errors"],
        json!({"base": "invalid_code"})
    );

    let done = manager
        .configure(&flow_id, input(json!({"code": "123456"})))
        .await
        .unwrap();
    assert_eq!(done.result, FlowResult::create_entry(json!({"mfa": true})));
    assert!(manager.is_empty());
    let steps: Vec<String> = calls.lock().iter().map(|(s, _)| s.clone()).collect();
    assert_eq!(steps, ["init", "init", "init", "mfa", "mfa"]);
}

#[tokio::test]
async fn invalid_input_leaves_the_flow_alive_and_unchanged() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, calls) = Login::new(false);
    let shown = manager.start(ha(), (), Box::new(flow)).await.unwrap();

    let cases = [
        (
            json!({"username": "a", "password": "b", "foo": 1}),
            vec![("foo", "extra keys not allowed")],
        ),
        (
            json!({"username": "a", "password": 123456}),
            vec![("password", "expected str")],
        ),
        (
            json!({"password": "b"}),
            vec![("username", "required key not provided")],
        ),
        (
            json!({"username": "a", "password": "b", "remember": "yes"}),
            vec![("remember", "expected bool")],
        ),
    ];
    for (bad, expected) in cases {
        let err = manager.configure(&shown.flow_id, input(bad)).await;
        let Err(FlowError::InvalidInput(InvalidInput { errors })) = err else {
            panic!("expected InvalidInput, got {err:?}");
        };
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(f, m)| (f.to_owned(), m.to_owned()))
            .collect();
        assert_eq!(errors, expected);
        assert_eq!(manager.current(&shown.flow_id), Some(shown.clone()));
    }
    // The flow never saw the bad input.
    assert_eq!(calls.lock().len(), 1);

    let done = manager
        .configure(
            &shown.flow_id,
            input(json!({"username": "a", "password": "secret"})),
        )
        .await
        .unwrap();
    assert!(done.result.is_finished());
}

#[tokio::test]
async fn configure_without_input_reruns_the_current_step() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, calls) = Login::new(false);
    let shown = manager.start(ha(), (), Box::new(flow)).await.unwrap();
    let again = manager.configure(&shown.flow_id, None).await.unwrap();
    assert_eq!(again, shown);
    assert_eq!(
        *calls.lock(),
        vec![("init".to_owned(), None), ("init".to_owned(), None)]
    );
}

#[tokio::test]
async fn abort_removes_the_flow() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, _) = Login::new(false);
    let flow_id = manager
        .start(ha(), (), Box::new(flow))
        .await
        .unwrap()
        .flow_id;

    manager.abort(&flow_id).unwrap();
    assert!(manager.is_empty());
    assert!(matches!(
        manager.abort(&flow_id),
        Err(FlowError::UnknownFlow)
    ));
    assert!(matches!(
        manager.configure(&flow_id, None).await,
        Err(FlowError::UnknownFlow)
    ));
}

#[tokio::test]
async fn unknown_flow_everywhere() {
    let manager = manager::<()>(FlowLimits::default());
    assert!(matches!(
        manager.configure("nope", None).await,
        Err(FlowError::UnknownFlow)
    ));
    assert!(matches!(manager.abort("nope"), Err(FlowError::UnknownFlow)));
    assert_eq!(manager.context("nope"), None);
    assert_eq!(manager.current("nope"), None);
    assert_eq!(manager.handler("nope"), None);
    assert!(manager.in_progress().is_empty());
    assert_eq!(manager.len(), 0);
    assert_eq!(FlowError::UnknownFlow.to_string(), "unknown flow");
}

#[tokio::test]
async fn finished_at_init_is_never_stored() {
    let manager = manager::<()>(limits(1, 60));
    for first in [
        FlowResult::create_entry(json!({"bypass": true})),
        FlowResult::abort("not_allowed"),
    ] {
        let (flow, _) = Scripted::new(first.clone(), Ok(FlowResult::abort("unused")));
        let response = manager.start(ha(), (), Box::new(flow)).await.unwrap();
        assert_eq!(response.result, first);
        assert!(manager.is_empty());
        assert_eq!(manager.current(&response.flow_id), None);
        assert!(matches!(
            manager.configure(&response.flow_id, None).await,
            Err(FlowError::UnknownFlow)
        ));
    }
    // Neither took the single slot.
    let (flow, _) = Login::new(false);
    assert!(manager.start(ha(), (), Box::new(flow)).await.is_ok());
}

#[tokio::test]
async fn step_error_removes_the_flow() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, calls) = Scripted::new(
        FlowResult::form("init", None),
        Err("backend down".to_owned()),
    );
    let flow_id = manager
        .start(ha(), (), Box::new(flow))
        .await
        .unwrap()
        .flow_id;
    let err = manager
        .configure(&flow_id, input(json!({"anything": 1})))
        .await
        .unwrap_err();
    assert!(matches!(&err, FlowError::Handler(m) if m == "backend down"));
    assert_eq!(err.to_string(), "flow step failed: backend down");
    assert!(manager.is_empty());
    // A form without a schema passes input through unvalidated.
    assert_eq!(text(&calls.lock()[1].1), r#"{"anything":1}"#);
}

/// `init` returns `external_done` pointing at `next`; only step `done` exists after that.
struct Redirect {
    next: &'static str,
}

#[async_trait::async_trait]
impl flow_engine::Flow for Redirect {
    async fn step(
        &mut self,
        step_id: &str,
        _input: Option<serde_json::Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        match step_id {
            "init" => Ok(FlowResult::external_step_done(self.next)),
            "done" => Ok(FlowResult::create_entry(json!({"via": "external"}))),
            other => Err(FlowError::UnknownStep(other.to_owned())),
        }
    }
}

#[tokio::test]
async fn external_done_runs_its_next_step() {
    let manager = manager::<()>(FlowLimits::default());
    let shown = manager
        .start(json!("x"), (), Box::new(Redirect { next: "done" }))
        .await
        .unwrap();
    assert_eq!(shown.result.type_name(), "external_done");
    let done = manager.configure(&shown.flow_id, None).await.unwrap();
    assert_eq!(
        done.result,
        FlowResult::create_entry(json!({"via": "external"}))
    );
    assert!(manager.is_empty());
}

#[tokio::test]
async fn unknown_step_error_removes_the_flow() {
    let manager = manager::<()>(FlowLimits::default());
    let flow_id = manager
        .start(json!("x"), (), Box::new(Redirect { next: "nowhere" }))
        .await
        .unwrap()
        .flow_id;
    let err = manager.configure(&flow_id, None).await.unwrap_err();
    assert!(matches!(&err, FlowError::UnknownStep(s) if s == "nowhere"));
    assert_eq!(err.to_string(), "unknown step: nowhere");
    assert!(manager.is_empty());
}

#[tokio::test]
async fn init_error_is_returned_and_frees_the_slot() {
    let manager = manager::<()>(limits(1, 60));
    let err = manager
        .start(ha(), (), Box::new(FailingInit))
        .await
        .unwrap_err();
    assert!(matches!(&err, FlowError::Handler(m) if m == "init exploded"));
    assert!(manager.is_empty());
    let (flow, _) = Login::new(false);
    assert!(manager.start(ha(), (), Box::new(flow)).await.is_ok());
}

#[tokio::test]
async fn menu_input_selects_the_next_step() {
    let manager = manager::<()>(FlowLimits::default());
    let calls = Calls::default();
    let shown = manager
        .start(
            json!("m"),
            (),
            Box::new(MenuFlow {
                calls: calls.clone(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(shown.result.type_name(), "menu");

    // Not an option, or extra keys: rejected by the menu's select schema.
    for bad in [
        json!({"next_step_id": "c"}),
        json!({"next_step_id": "a", "x": 1}),
        json!({"next_step_id": 1}),
    ] {
        assert!(matches!(
            manager.configure(&shown.flow_id, input(bad)).await,
            Err(FlowError::InvalidInput(_))
        ));
    }
    // No choice re-runs the menu step.
    let again = manager
        .configure(&shown.flow_id, input(json!({})))
        .await
        .unwrap();
    assert_eq!(again, shown);

    let form = manager
        .configure(&shown.flow_id, input(json!({"next_step_id": "b"})))
        .await
        .unwrap();
    assert_eq!(form.result, FlowResult::form("b", None));
    let steps: Vec<(String, Option<_>)> = calls.lock().clone();
    assert_eq!(
        steps,
        vec![
            ("init".to_owned(), None),
            ("init".to_owned(), None),
            ("b".to_owned(), None)
        ]
    );

    let calls = Calls::default();
    let flow_id = manager
        .start(json!("m"), (), Box::new(MenuFlow { calls }))
        .await
        .unwrap()
        .flow_id;
    let done = manager
        .configure(&flow_id, input(json!({"next_step_id": "a"})))
        .await
        .unwrap();
    assert_eq!(
        done.result,
        FlowResult::create_entry(json!({"picked": "a"}))
    );
    assert_eq!(manager.len(), 1); // only the first menu flow (now at form "b") is left
}

#[tokio::test]
async fn concurrent_configure_is_rejected_with_in_progress() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, entered, release) = Blocking::new(false);
    let flow_id = manager
        .start(ha(), (), Box::new(flow))
        .await
        .unwrap()
        .flow_id;

    let first = tokio::spawn({
        let manager = manager.clone();
        let flow_id = flow_id.clone();
        async move {
            manager
                .configure(&flow_id, input(json!({"code": "1"})))
                .await
        }
    });
    within("the step to start", entered.notified()).await;

    // The first request holds the flow: a second one is refused at once, input valid or not.
    for body in [input(json!({"code": "2"})), None, input(json!({"bad": 1}))] {
        assert!(matches!(
            manager.configure(&flow_id, body).await,
            Err(FlowError::InProgress)
        ));
    }
    // Reads do not block while a step runs.
    assert_eq!(
        manager.current(&flow_id).unwrap().result.step_id(),
        Some("wait")
    );
    assert_eq!(manager.len(), 1);

    release.notify_one();
    let done = within("the spawned request", first).await.unwrap().unwrap();
    assert_eq!(
        done.result,
        FlowResult::create_entry(json!({"released": true}))
    );
    assert!(manager.is_empty());
}

#[tokio::test]
async fn abort_while_a_step_runs_wins() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, entered, release) = Blocking::new(false);
    let flow_id = manager
        .start(ha(), (), Box::new(flow))
        .await
        .unwrap()
        .flow_id;
    let first = tokio::spawn({
        let manager = manager.clone();
        let flow_id = flow_id.clone();
        async move {
            manager
                .configure(&flow_id, input(json!({"code": "1"})))
                .await
        }
    });
    within("the step to start", entered.notified()).await;
    manager.abort(&flow_id).unwrap();
    release.notify_one();
    // The running step still answers, but the flow stays gone.
    assert!(within("the spawned request", first).await.unwrap().is_ok());
    assert!(manager.is_empty());
    assert!(matches!(
        manager.configure(&flow_id, None).await,
        Err(FlowError::UnknownFlow)
    ));
}

#[tokio::test]
async fn a_cancelled_configure_releases_the_flow() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, entered, release) = Blocking::new(false);
    let flow_id = manager
        .start(ha(), (), Box::new(flow))
        .await
        .unwrap()
        .flow_id;
    let first = tokio::spawn({
        let manager = manager.clone();
        let flow_id = flow_id.clone();
        async move {
            manager
                .configure(&flow_id, input(json!({"code": "1"})))
                .await
        }
    });
    within("the step to start", entered.notified()).await;
    first.abort();
    assert!(
        within("the cancelled task", first)
            .await
            .unwrap_err()
            .is_cancelled()
    );
    // The flow is still at its previous step and can be configured again.
    assert_eq!(
        manager.current(&flow_id).unwrap().result.step_id(),
        Some("wait")
    );
    let again = tokio::spawn({
        let manager = manager.clone();
        let flow_id = flow_id.clone();
        async move {
            manager
                .configure(&flow_id, input(json!({"code": "1"})))
                .await
        }
    });
    within("the step to start", entered.notified()).await;
    release.notify_one();
    let done = within("the spawned request", again).await.unwrap().unwrap();
    assert_eq!(
        done.result,
        FlowResult::create_entry(json!({"released": true}))
    );
}

#[tokio::test]
async fn too_many_flows_at_the_limit() {
    let manager = manager::<u32>(limits(2, 60));
    for n in 0..2 {
        let (flow, _) = Login::new(false);
        manager.start(ha(), n, Box::new(flow)).await.unwrap();
    }
    let (flow, calls) = Login::new(false);
    let err = manager.start(ha(), 2, Box::new(flow)).await.unwrap_err();
    assert!(matches!(err, FlowError::TooManyFlows));
    assert_eq!(err.to_string(), "too many flows in progress");
    assert!(calls.lock().is_empty(), "a refused flow never runs");
    assert_eq!(manager.len(), 2);
    // Oldest first.
    let contexts: Vec<u32> = manager
        .in_progress()
        .into_iter()
        .map(|(_, _, c)| c)
        .collect();
    assert_eq!(contexts, [0, 1]);

    manager.abort(&id(1)).unwrap();
    let (flow, _) = Login::new(false);
    assert!(manager.start(ha(), 3, Box::new(flow)).await.is_ok());
}

fn owned_limits(max_flows: usize, per_owner: usize) -> FlowLimits {
    FlowLimits {
        max_flows,
        max_flows_per_owner: per_owner,
        idle_timeout: Duration::from_secs(60),
    }
}

async fn start_as(manager: &FlowManager<u32>, owner: &str, n: u32) -> String {
    let (flow, _) = Login::new(false);
    manager
        .start_owned(Some(owner), ha(), n, Box::new(flow))
        .await
        .expect("starts")
        .flow_id
}

#[tokio::test]
async fn one_owner_flooding_cannot_take_the_table_from_the_others() {
    let manager = manager::<u32>(owned_limits(8, 3));
    let honest = start_as(&manager, "honest", 0).await;
    for n in 1..=100 {
        start_as(&manager, "flood", n).await;
    }
    // The flooding owner holds its share (its newest flows), the others keep theirs.
    let contexts: Vec<u32> = manager
        .in_progress()
        .into_iter()
        .map(|(_, _, c)| c)
        .collect();
    assert_eq!(contexts, [0, 98, 99, 100]);
    assert_eq!(manager.context(&honest), Some(0));
    // Others still start flows and finish them.
    let other = start_as(&manager, "other", 200).await;
    let done = manager
        .configure(
            &other,
            input(json!({"password": "secret", "username": "alice"})),
        )
        .await
        .unwrap();
    assert!(done.result.is_finished());
    // An evicted flow is gone for good.
    assert!(matches!(
        manager.configure(&id(2), None).await,
        Err(FlowError::UnknownFlow)
    ));
}

#[tokio::test]
async fn an_owner_gets_its_share_back_as_its_flows_end() {
    let manager = manager::<u32>(owned_limits(8, 2));
    let first = start_as(&manager, "a", 1).await;
    let second = start_as(&manager, "a", 2).await;
    manager.abort(&first).unwrap();
    // Room again: nothing of the owner's is evicted.
    start_as(&manager, "a", 3).await;
    assert_eq!(manager.context(&second), Some(2));
    assert_eq!(manager.len(), 2);
    // Flows without an owner and other owners are not counted against "a".
    let (flow, _) = Login::new(false);
    manager.start(ha(), 4, Box::new(flow)).await.unwrap();
    start_as(&manager, "b", 5).await;
    assert_eq!(manager.len(), 4);
    // The global limit still holds for everybody.
    let full = crate::common::manager::<u32>(owned_limits(2, 2));
    start_as(&full, "a", 1).await;
    start_as(&full, "b", 2).await;
    let (flow, _) = Login::new(false);
    assert!(matches!(
        full.start_owned(Some("c"), ha(), 3, Box::new(flow)).await,
        Err(FlowError::TooManyFlows)
    ));
}

#[tokio::test]
async fn an_owner_whose_flows_are_all_starting_is_refused() {
    let manager = manager::<()>(FlowLimits {
        max_flows: 8,
        max_flows_per_owner: 1,
        idle_timeout: Duration::from_secs(60),
    });
    let (flow, entered, release) = Blocking::new(true);
    let starting = tokio::spawn({
        let manager = manager.clone();
        async move {
            manager
                .start_owned(Some("a"), ha(), (), Box::new(flow))
                .await
        }
    });
    within("the step to start", entered.notified()).await;
    let (flow, calls) = Login::new(false);
    assert!(matches!(
        manager
            .start_owned(Some("a"), ha(), (), Box::new(flow))
            .await,
        Err(FlowError::TooManyFlows)
    ));
    assert!(calls.lock().is_empty());
    let (flow, _) = Login::new(false);
    assert!(
        manager
            .start_owned(Some("b"), ha(), (), Box::new(flow))
            .await
            .is_ok()
    );
    release.notify_one();
    within("the spawned request", starting)
        .await
        .unwrap()
        .unwrap();
    // Now "a" has a stored flow, which its next start evicts.
    let (flow, _) = Login::new(false);
    let next = manager
        .start_owned(Some("a"), ha(), (), Box::new(flow))
        .await
        .unwrap();
    assert!(manager.current(&id(1)).is_none());
    assert!(manager.current(&next.flow_id).is_some());
}

#[tokio::test]
async fn flows_still_running_init_count_against_the_limit() {
    let manager = manager::<()>(limits(1, 60));
    let (flow, entered, release) = Blocking::new(true);
    let starting = tokio::spawn({
        let manager = manager.clone();
        async move { manager.start(ha(), (), Box::new(flow)).await }
    });
    within("the step to start", entered.notified()).await;
    assert_eq!(manager.len(), 0);
    let (flow, _) = Login::new(false);
    assert!(matches!(
        manager.start(ha(), (), Box::new(flow)).await,
        Err(FlowError::TooManyFlows)
    ));
    // Not configurable before init is done.
    assert!(matches!(
        manager.configure(&id(1), None).await,
        Err(FlowError::UnknownFlow)
    ));
    release.notify_one();
    let shown = within("the spawned request", starting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.flow_id, id(1));
    assert_eq!(manager.len(), 1);
}

#[tokio::test]
async fn a_cancelled_start_frees_its_slot() {
    let manager = manager::<()>(limits(1, 60));
    let (flow, entered, _release) = Blocking::new(true);
    let starting = tokio::spawn({
        let manager = manager.clone();
        async move { manager.start(ha(), (), Box::new(flow)).await }
    });
    within("the step to start", entered.notified()).await;
    starting.abort();
    assert!(
        within("the cancelled task", starting)
            .await
            .unwrap_err()
            .is_cancelled()
    );
    let (flow, _) = Login::new(false);
    assert!(manager.start(ha(), (), Box::new(flow)).await.is_ok());
}

#[tokio::test]
async fn duplicate_ids_from_the_source_are_skipped() {
    let ids = std::sync::Mutex::new(vec!["b".to_owned(), "a".to_owned(), "a".to_owned()]);
    let manager: FlowManager<()> = FlowManager::new(
        FlowLimits::default(),
        Arc::new(move || ids.lock().unwrap().pop().unwrap_or_else(|| "a".to_owned())),
    );
    let (flow, _) = Login::new(false);
    assert_eq!(
        manager
            .start(ha(), (), Box::new(flow))
            .await
            .unwrap()
            .flow_id,
        "a"
    );
    let (flow, _) = Login::new(false);
    assert_eq!(
        manager
            .start(ha(), (), Box::new(flow))
            .await
            .unwrap()
            .flow_id,
        "b"
    );
    // From now on the source only repeats "a": start gives up instead of looping forever.
    let (flow, calls) = Login::new(false);
    assert!(matches!(
        manager.start(ha(), (), Box::new(flow)).await,
        Err(FlowError::Handler(_))
    ));
    assert!(calls.lock().is_empty());
}

#[tokio::test(start_paused = true)]
async fn idle_flows_expire() {
    let manager = manager::<()>(limits(2, 60));
    let (flow, _) = Login::new(false);
    let flow_id = manager
        .start(ha(), (), Box::new(flow))
        .await
        .unwrap()
        .flow_id;

    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(
        manager.current(&flow_id).is_some(),
        "exactly the timeout is still alive"
    );
    // Activity refreshes the clock.
    manager.configure(&flow_id, None).await.unwrap();
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(manager.len(), 1);
    assert_eq!(manager.purge_expired(), 0);

    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(manager.len(), 0);
    assert!(manager.in_progress().is_empty());
    assert_eq!(manager.current(&flow_id), None);
    assert_eq!(manager.context(&flow_id), None);
    assert_eq!(manager.handler(&flow_id), None);
    assert!(matches!(
        manager.configure(&flow_id, None).await,
        Err(FlowError::UnknownFlow)
    ));
    assert!(matches!(
        manager.abort(&flow_id),
        Err(FlowError::UnknownFlow)
    ));
}

#[tokio::test(start_paused = true)]
async fn purge_counts_and_start_purges_first() {
    let manager = manager::<()>(limits(2, 60));
    for _ in 0..2 {
        let (flow, _) = Login::new(false);
        manager.start(ha(), (), Box::new(flow)).await.unwrap();
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    let (flow, _) = Login::new(false);
    assert!(matches!(
        manager.start(ha(), (), Box::new(flow)).await,
        Err(FlowError::TooManyFlows)
    ));
    // Keep the second flow busy.
    manager.configure(&id(2), None).await.unwrap();
    tokio::time::advance(Duration::from_secs(31)).await;
    // The first flow has expired: start purges it and gets its slot.
    let (flow, _) = Login::new(false);
    let shown = manager.start(ha(), (), Box::new(flow)).await.unwrap();
    assert_eq!(shown.flow_id, id(3)); // the refused start used no id
    assert_eq!(manager.len(), 2);

    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(manager.purge_expired(), 2);
    assert_eq!(manager.purge_expired(), 0);
    assert!(manager.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_flow_running_a_long_step_does_not_expire() {
    let manager = manager::<()>(limits(4, 60));
    let (flow, entered, release) = Blocking::new(false);
    let flow_id = manager
        .start(ha(), (), Box::new(flow))
        .await
        .unwrap()
        .flow_id;
    let running = tokio::spawn({
        let manager = manager.clone();
        let flow_id = flow_id.clone();
        async move {
            manager
                .configure(&flow_id, input(json!({"code": "1"})))
                .await
        }
    });
    within("the step to start", entered.notified()).await;
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(manager.purge_expired(), 0);
    assert!(manager.current(&flow_id).is_some());
    release.notify_one();
    assert!(
        within("the spawned request", running)
            .await
            .unwrap()
            .unwrap()
            .result
            .is_finished()
    );
}

#[tokio::test]
async fn debug_output_does_not_leak_flows() {
    let manager = manager::<()>(FlowLimits::default());
    let (flow, _) = Login::new(false);
    manager.start(ha(), (), Box::new(flow)).await.unwrap();
    let debug = format!("{manager:?}");
    assert!(debug.contains("flows: 1"), "{debug}");
}

/// A flow that shows the id it was told in an external step's URL.
struct BoundFlow {
    bound: Option<String>,
}

#[async_trait::async_trait]
impl flow_engine::Flow for BoundFlow {
    fn bind_flow_id(&mut self, flow_id: &str) {
        self.bound = Some(flow_id.to_owned());
    }

    async fn step(
        &mut self,
        _step_id: &str,
        _input: Option<serde_json::Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        let bound = self.bound.clone().unwrap_or_default();
        Ok(FlowResult::external_step(
            "external",
            format!("https://idp.example/?state={bound}"),
        ))
    }
}

#[tokio::test]
async fn a_flow_is_told_its_id_before_its_first_step() {
    let flows: FlowManager<()> = manager(FlowLimits::default());
    let first = flows
        .start(ha(), (), Box::new(BoundFlow { bound: None }))
        .await
        .unwrap();
    assert_eq!(first.flow_id, id(1));
    assert_eq!(
        first.result,
        FlowResult::external_step("external", format!("https://idp.example/?state={}", id(1)))
    );
    let second = flows
        .start(ha(), (), Box::new(BoundFlow { bound: None }))
        .await
        .unwrap();
    assert_eq!(second.result.step_id(), Some("external"));
    assert_eq!(
        flows.current(&id(2)).unwrap().result,
        FlowResult::external_step("external", format!("https://idp.example/?state={}", id(2)))
    );
}

//! Test flows and helpers shared by the integration tests.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flow_engine::{
    Field, Flow, FlowError, FlowLimits, FlowManager, FlowResult, IdSource, MenuOptions, Schema,
};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

/// Ids `000…001`, `000…002`, … (32 lowercase hex characters).
pub fn counter_ids() -> IdSource {
    let next = Arc::new(AtomicU64::new(1));
    Arc::new(move || format!("{:032x}", next.fetch_add(1, Ordering::Relaxed)))
}

/// The id `counter_ids` hands out `n`-th (1-based).
pub fn id(n: u64) -> String {
    format!("{n:032x}")
}

/// Awaits `future`, failing the test instead of hanging if it takes more than 10 s.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(10), future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

pub fn manager<C: Clone + Send + Sync + 'static>(limits: FlowLimits) -> FlowManager<C> {
    FlowManager::new(limits, counter_ids())
}

pub fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub fn input(value: Value) -> Option<Map<String, Value>> {
    Some(obj(value))
}

/// Compact JSON text (key order preserved).
pub fn text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

/// Every `(step_id, input)` a flow was called with.
pub type Calls = Arc<Mutex<Vec<(String, Option<Map<String, Value>>)>>>;

pub fn credentials_schema() -> Schema {
    Schema::new(vec![
        Field::string("username").required(),
        Field::string("password").required(),
        Field::boolean("remember")
            .optional()
            .with_default(json!(false)),
    ])
}

pub fn code_schema() -> Schema {
    Schema::new(vec![Field::string("code").required()])
}

/// A login-like flow: `init` (username/password) -> optional `mfa` (code) -> create_entry.
pub struct Login {
    pub calls: Calls,
    pub mfa: bool,
}

impl Login {
    pub fn new(mfa: bool) -> (Self, Calls) {
        let calls = Calls::default();
        (
            Self {
                calls: calls.clone(),
                mfa,
            },
            calls,
        )
    }
}

#[async_trait::async_trait]
impl Flow for Login {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        self.calls.lock().push((step_id.to_owned(), input.clone()));
        match (step_id, input) {
            ("init", None) => {
                Ok(FlowResult::form("init", Some(credentials_schema())).with_errors(Map::new()))
            }
            ("init", Some(input)) => {
                if input["password"] != "secret" {
                    return Ok(FlowResult::form("init", Some(credentials_schema()))
                        .with_errors(obj(json!({"base": "invalid_auth"}))));
                }
                if self.mfa {
                    Ok(FlowResult::form("mfa", Some(code_schema()))
                        .with_errors(Map::new())
                        .with_placeholders(obj(json!({"mfa_module_id": "totp"}))))
                } else {
                    Ok(FlowResult::create_entry(
                        json!({"username": input["username"]}),
                    ))
                }
            }
            ("mfa", Some(input)) if input["code"] == "123456" => {
                Ok(FlowResult::create_entry(json!({"mfa": true})))
            }
            ("mfa", Some(_)) => Ok(FlowResult::form("mfa", Some(code_schema()))
                .with_errors(obj(json!({"base": "invalid_code"})))),
            ("mfa", None) => Ok(FlowResult::form("mfa", Some(code_schema()))),
            (other, _) => Err(FlowError::UnknownStep(other.to_owned())),
        }
    }
}

/// Returns `first` from `init`, then `then` (or an error) from every later step.
pub struct Scripted {
    pub first: FlowResult,
    pub then: Result<FlowResult, String>,
    pub calls: Calls,
}

impl Scripted {
    pub fn new(first: FlowResult, then: Result<FlowResult, String>) -> (Self, Calls) {
        let calls = Calls::default();
        (
            Self {
                first,
                then,
                calls: calls.clone(),
            },
            calls,
        )
    }
}

#[async_trait::async_trait]
impl Flow for Scripted {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        let first_call = self.calls.lock().is_empty();
        self.calls.lock().push((step_id.to_owned(), input));
        if first_call {
            return Ok(self.first.clone());
        }
        self.then.clone().map_err(FlowError::Handler)
    }
}

/// A flow whose init fails.
pub struct FailingInit;

#[async_trait::async_trait]
impl Flow for FailingInit {
    async fn step(
        &mut self,
        _step_id: &str,
        _input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        Err(FlowError::Handler("init exploded".into()))
    }
}

/// `init` shows form `wait`, which finishes; signals `entered` and waits for `release`
/// in `init` or in the later step.
pub struct Blocking {
    pub block_in_init: bool,
    pub entered: Arc<Notify>,
    pub release: Arc<Notify>,
}

impl Blocking {
    pub fn new(block_in_init: bool) -> (Self, Arc<Notify>, Arc<Notify>) {
        let entered = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        (
            Self {
                block_in_init,
                entered: entered.clone(),
                release: release.clone(),
            },
            entered,
            release,
        )
    }
}

#[async_trait::async_trait]
impl Flow for Blocking {
    async fn step(
        &mut self,
        step_id: &str,
        _input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        let blocks = if self.block_in_init {
            step_id == "init"
        } else {
            step_id != "init"
        };
        if blocks {
            self.entered.notify_one();
            self.release.notified().await;
        }
        if step_id == "init" {
            Ok(FlowResult::form("wait", Some(code_schema())))
        } else {
            Ok(FlowResult::create_entry(json!({"released": true})))
        }
    }
}

/// `init` shows a menu of `a` and `b`; `a` finishes, `b` shows a form.
pub struct MenuFlow {
    pub calls: Calls,
}

#[async_trait::async_trait]
impl Flow for MenuFlow {
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError> {
        self.calls.lock().push((step_id.to_owned(), input));
        match step_id {
            "init" => Ok(FlowResult::menu(
                "init",
                MenuOptions::Labeled(vec![
                    ("a".into(), "Option A".into()),
                    ("b".into(), "B".into()),
                ]),
            )),
            "a" => Ok(FlowResult::create_entry(json!({"picked": "a"}))),
            "b" => Ok(FlowResult::form("b", None)),
            other => Err(FlowError::UnknownStep(other.to_owned())),
        }
    }
}

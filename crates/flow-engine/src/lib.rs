//! Generic multi-step form flows (Home Assistant's `data_entry_flow`).
//!
//! A [`Flow`] is a state machine whose steps are named by `step_id`. Each step
//! returns a [`FlowResult`]: a form to show (with a [`Schema`]), a menu, an
//! external or progress step, or a finish (`create_entry` / `abort`).
//! The [`FlowManager`] keeps the flows in progress keyed by a random `flow_id`,
//! validates submitted input strictly against the current form's schema before
//! the flow sees it, and removes flows that finish, fail, are aborted or sit idle
//! for too long. [`FlowResponse`] serialises to Home Assistant's exact JSON
//! shapes (key order included), and [`Schema`] to its `data_schema` field list.
//!
//! This crate knows nothing about authentication; login and MFA flows are
//! built on it elsewhere.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use flow_engine::{Field, Flow, FlowError, FlowLimits, FlowManager, FlowResult, Schema};
//! use serde_json::{json, Map, Value};
//!
//! struct Login;
//!
//! #[async_trait::async_trait]
//! impl Flow for Login {
//!     async fn step(
//!         &mut self,
//!         step_id: &str,
//!         input: Option<Map<String, Value>>,
//!     ) -> Result<FlowResult, FlowError> {
//!         let schema = Schema::new(vec![
//!             Field::string("username").required(),
//!             Field::string("password").required(),
//!         ]);
//!         match (step_id, input) {
//!             ("init", None) => Ok(FlowResult::form("init", Some(schema))),
//!             ("init", Some(input)) if input["password"] == "secret" => {
//!                 Ok(FlowResult::create_entry(json!({"username": input["username"]})))
//!             }
//!             ("init", Some(_)) => {
//!                 let mut errors = Map::new();
//!                 errors.insert("base".into(), json!("invalid_auth"));
//!                 Ok(FlowResult::form("init", Some(schema)).with_errors(errors))
//!             }
//!             (other, _) => Err(FlowError::UnknownStep(other.to_owned())),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), FlowError> {
//! // Real callers pass 128 random bits as 32 lowercase hex characters.
//! let counter = Arc::new(AtomicU64::new(0));
//! let ids = Arc::new(move || format!("{:032x}", counter.fetch_add(1, Ordering::Relaxed)));
//! let manager: FlowManager<()> = FlowManager::new(FlowLimits::default(), ids);
//!
//! let shown = manager.start(json!(["homeassistant", null]), (), Box::new(Login)).await?;
//! assert_eq!(shown.to_json()["data_schema"][0]["name"], "username");
//!
//! // Strict validation: a number where a string is expected is rejected, the flow survives.
//! let bad = json!({"username": "alice", "password": 1});
//! let err = manager.configure(&shown.flow_id, bad.as_object().cloned()).await;
//! assert!(matches!(err, Err(FlowError::InvalidInput(_))));
//!
//! let good = json!({"username": "alice", "password": "secret"});
//! let done = manager.configure(&shown.flow_id, good.as_object().cloned()).await?;
//! assert!(done.result.is_finished());
//! assert!(manager.is_empty()); // finished flows are removed
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod manager;
pub mod result;
pub mod schema;

pub use manager::{Flow, FlowError, FlowLimits, FlowManager, IdSource};
pub use result::{FlowResponse, FlowResult, MenuOptions};
pub use schema::{Field, FieldKind, InvalidInput, Schema};

#[cfg(test)]
mod tests;

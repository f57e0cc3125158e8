//! The flow table: starts flows, feeds them validated input, removes finished,
//! failed, aborted and idle flows.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::result::{FlowResponse, FlowResult};
use crate::schema::InvalidInput;

/// One multi-step flow: a state machine whose steps are named by `step_id`.
#[async_trait::async_trait]
pub trait Flow: Send + 'static {
    /// Runs step `step_id` with validated input (None on first display / init).
    async fn step(
        &mut self,
        step_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResult, FlowError>;

    /// Tells the flow its id, once, before its first step (e.g. to put it into an external
    /// step's `state`). Default: ignored.
    fn bind_flow_id(&mut self, _flow_id: &str) {}
}

/// Why a flow operation failed.
#[derive(Debug, thiserror::Error)]
// Not `#[non_exhaustive]`: auth-http answers every variant in one exhaustive match (a new variant must be given its HTTP answer).
pub enum FlowError {
    /// No flow with this id (never existed, finished, aborted or expired).
    #[error("unknown flow")]
    UnknownFlow,
    /// The flow has no step with this id (returned by flows; the flow is removed).
    #[error("unknown step: {0}")]
    UnknownStep(String),
    /// The submitted input does not match the current step's schema; the flow is unchanged.
    #[error("invalid user input: {0}")]
    InvalidInput(#[from] InvalidInput),
    /// Another request for the same flow is still being processed.
    #[error("flow request already in progress")]
    InProgress,
    /// The manager already holds its maximum number of flows (or, for a flow with an owner,
    /// every flow the owner may hold is still running its `init` step).
    #[error("too many flows in progress")]
    TooManyFlows,
    /// A step failed; the flow is removed.
    #[error("flow step failed: {0}")]
    Handler(String),
}

/// Limits that keep the in-memory flow table bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowLimits {
    /// Most flows alive at once (including flows still running `init`); default 1024.
    pub max_flows: usize,
    /// Most flows one owner (see [`FlowManager::start_owned`]) holds at once, default 32; an
    /// owner's further flow evicts that owner's oldest flow, so one owner can neither take
    /// the whole table nor lock itself out.
    pub max_flows_per_owner: usize,
    /// A flow untouched for longer than this is dropped; default 10 minutes.
    pub idle_timeout: Duration,
}

impl Default for FlowLimits {
    fn default() -> Self {
        Self {
            max_flows: 1024,
            max_flows_per_owner: 32,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// Makes flow ids; should return 32 lowercase hex characters from 128 random bits.
pub type IdSource = Arc<dyn Fn() -> String + Send + Sync>;

/// How often `start` asks the id source again when it returns an id already in use.
const ID_ATTEMPTS: usize = 16;

type SharedFlow = Arc<tokio::sync::Mutex<Box<dyn Flow>>>;

struct Entry<C> {
    flow: SharedFlow,
    owner: Option<Arc<str>>,
    handler: Value,
    context: C,
    current: FlowResult,
    last_activity: Instant,
    seq: u64,
}

impl<C> Entry<C> {
    /// Idle for longer than `timeout` and not running a step right now.
    fn is_expired(&self, now: Instant, timeout: Duration) -> bool {
        // A running `configure` holds clones of the Arc; counting them (rather than trying
        // the lock) never makes a concurrent request see a spurious `InProgress`.
        let busy = Arc::strong_count(&self.flow) > 1;
        !busy && now.saturating_duration_since(self.last_activity) > timeout
    }

    fn response(&self, flow_id: &str) -> FlowResponse {
        FlowResponse {
            flow_id: flow_id.to_owned(),
            handler: self.handler.clone(),
            result: self.current.clone(),
        }
    }
}

/// The flows of one owner: stored ones in start order, and how many are running `init`.
#[derive(Default)]
struct Owned {
    flows: VecDeque<String>,
    pending: usize,
}

struct State<C> {
    flows: HashMap<String, Entry<C>>,
    /// Flows that are running their `init` step (they count against the limits), by id, with
    /// their owner.
    pending: HashMap<String, Option<Arc<str>>>,
    /// Per owner; an owner is listed while it has a stored or pending flow.
    owners: HashMap<Arc<str>, Owned>,
    next_seq: u64,
}

impl<C> State<C> {
    /// Removes a stored flow (and its place in its owner's list, at most
    /// `max_flows_per_owner` long).
    fn remove(&mut self, flow_id: &str) -> Option<Entry<C>> {
        let entry = self.flows.remove(flow_id)?;
        if let Some(owner) = &entry.owner
            && let Some(owned) = self.owners.get_mut(owner)
        {
            owned.flows.retain(|id| id != flow_id);
            if owned.flows.is_empty() && owned.pending == 0 {
                self.owners.remove(owner);
            }
        }
        Some(entry)
    }

    /// Forgets a pending flow (its `init` finished, failed or was dropped).
    fn unpend(&mut self, flow_id: &str) {
        let Some(Some(owner)) = self.pending.remove(flow_id) else {
            return;
        };
        if let Some(owned) = self.owners.get_mut(&owner) {
            owned.pending = owned.pending.saturating_sub(1);
            if owned.flows.is_empty() && owned.pending == 0 {
                self.owners.remove(&owner);
            }
        }
    }
}

struct Inner<C> {
    limits: FlowLimits,
    id_source: IdSource,
    state: Mutex<State<C>>,
}

impl<C> Inner<C> {
    /// The live entry for `flow_id`; an expired one is removed and reported absent.
    fn live<'a>(&self, state: &'a mut State<C>, flow_id: &str) -> Option<&'a mut Entry<C>> {
        let expired = state
            .flows
            .get(flow_id)?
            .is_expired(Instant::now(), self.limits.idle_timeout);
        if expired {
            state.remove(flow_id);
            return None;
        }
        state.flows.get_mut(flow_id)
    }
}

/// Releases a slot reserved by `start` if `init` fails or the future is dropped.
struct Reservation<'a, C> {
    inner: &'a Inner<C>,
    flow_id: &'a str,
}

impl<C> Drop for Reservation<'_, C> {
    fn drop(&mut self) {
        self.inner.state.lock().unpend(self.flow_id);
    }
}

/// The in-memory table of flows in progress; clones share the same table.
pub struct FlowManager<C: Clone + Send + Sync + 'static> {
    inner: Arc<Inner<C>>,
}

impl<C: Clone + Send + Sync + 'static> Clone for FlowManager<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> fmt::Debug for FlowManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("FlowManager")
            .field("limits", &self.inner.limits)
            .field("flows", &state.flows.len())
            .field("starting", &state.pending.len())
            .field("owners", &state.owners.len())
            .finish()
    }
}

impl<C: Clone + Send + Sync + 'static> FlowManager<C> {
    /// An empty table with these limits, taking flow ids from `id_source`.
    pub fn new(limits: FlowLimits, id_source: IdSource) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                id_source,
                state: Mutex::new(State {
                    flows: HashMap::new(),
                    pending: HashMap::new(),
                    owners: HashMap::new(),
                    next_seq: 0,
                }),
            }),
        }
    }

    /// The limits this manager enforces.
    pub fn limits(&self) -> &FlowLimits {
        &self.inner.limits
    }

    /// Creates a flow and runs its `init` step; a finished result is returned and never stored.
    /// The flow counts only against [`FlowLimits::max_flows`].
    pub async fn start(
        &self,
        handler: Value,
        context: C,
        flow: Box<dyn Flow>,
    ) -> Result<FlowResponse, FlowError> {
        self.start_owned(None, handler, context, flow).await
    }

    /// [`FlowManager::start`] for a flow of `owner` (e.g. a client address): an owner holds at
    /// most [`FlowLimits::max_flows_per_owner`] flows; starting one more evicts the owner's
    /// oldest (by start), so that one owner cannot fill the table for everybody. Only when all
    /// of the owner's flows are still running `init` is the new one refused
    /// ([`FlowError::TooManyFlows`]).
    pub async fn start_owned(
        &self,
        owner: Option<&str>,
        handler: Value,
        context: C,
        mut flow: Box<dyn Flow>,
    ) -> Result<FlowResponse, FlowError> {
        self.purge_expired();
        let owner: Option<Arc<str>> = owner.map(Arc::from);
        let flow_id = self.reserve_id(owner.clone())?;
        let reservation = Reservation {
            inner: &self.inner,
            flow_id: &flow_id,
        };
        flow.bind_flow_id(&flow_id);
        // On error the reservation is released by its Drop.
        let result = flow.step("init", None).await?;
        let response = FlowResponse {
            flow_id: flow_id.clone(),
            handler: handler.clone(),
            result: result.clone(),
        };
        if !result.is_finished() {
            let mut state = self.inner.state.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            if let Some(owner) = &owner {
                state
                    .owners
                    .entry(Arc::clone(owner))
                    .or_default()
                    .flows
                    .push_back(flow_id.clone());
            }
            state.flows.insert(
                flow_id.clone(),
                Entry {
                    flow: Arc::new(tokio::sync::Mutex::new(flow)),
                    owner,
                    handler,
                    context,
                    current: result,
                    last_activity: Instant::now(),
                    seq,
                },
            );
        }
        drop(reservation);
        Ok(response)
    }

    /// Checks the limits (evicting the owner's oldest flow if it holds its share) and reserves
    /// a fresh id for a flow about to run `init`.
    fn reserve_id(&self, owner: Option<Arc<str>>) -> Result<String, FlowError> {
        let mut state = self.inner.state.lock();
        if let Some(owner) = &owner {
            let share = self.inner.limits.max_flows_per_owner.max(1);
            let held = state
                .owners
                .get(owner)
                .map_or((0, 0), |o| (o.flows.len(), o.pending));
            if held.0 + held.1 >= share {
                let oldest = state
                    .owners
                    .get(owner)
                    .and_then(|o| o.flows.front().cloned());
                let Some(oldest) = oldest else {
                    return Err(FlowError::TooManyFlows);
                };
                state.remove(&oldest);
            }
        }
        if state.flows.len() + state.pending.len() >= self.inner.limits.max_flows {
            return Err(FlowError::TooManyFlows);
        }
        for _ in 0..ID_ATTEMPTS {
            let id = (self.inner.id_source)();
            if !state.flows.contains_key(&id) && !state.pending.contains_key(&id) {
                state.pending.insert(id.clone(), owner.clone());
                if let Some(owner) = &owner {
                    state.owners.entry(Arc::clone(owner)).or_default().pending += 1;
                }
                return Ok(id);
            }
        }
        Err(FlowError::Handler(
            "the flow id source keeps returning ids already in use".to_owned(),
        ))
    }

    /// Submits `input` to the flow's current step (validated against its schema) and runs it.
    pub async fn configure(
        &self,
        flow_id: &str,
        input: Option<Map<String, Value>>,
    ) -> Result<FlowResponse, FlowError> {
        let shared = {
            let mut state = self.inner.state.lock();
            let entry = self
                .inner
                .live(&mut state, flow_id)
                .ok_or(FlowError::UnknownFlow)?;
            Arc::clone(&entry.flow)
        };
        let mut flow = Arc::clone(&shared)
            .try_lock_owned()
            .map_err(|_| FlowError::InProgress)?;

        // Read the current step only now: a request that held the lock may have changed it.
        let (current, handler) = {
            let mut state = self.inner.state.lock();
            let entry = state
                .flows
                .get_mut(flow_id)
                .filter(|entry| Arc::ptr_eq(&entry.flow, &shared))
                .ok_or(FlowError::UnknownFlow)?;
            entry.last_activity = Instant::now();
            (entry.current.clone(), entry.handler.clone())
        };

        let input = match (current.input_schema(), input) {
            (Some(schema), Some(input)) => Some(schema.validate(&input)?),
            (_, input) => input,
        };
        let (step_id, input) = match &current {
            FlowResult::Menu { step_id, .. } => {
                match input.as_ref().and_then(|input| input.get("next_step_id")) {
                    Some(Value::String(next)) => (next.clone(), None),
                    _ => (step_id.clone(), None),
                }
            }
            other => match other.step_id() {
                Some(step_id) => (step_id.to_owned(), input),
                // Finished results are never stored; treat one as a gone flow.
                None => return Err(FlowError::UnknownFlow),
            },
        };

        let outcome = flow.step(&step_id, input).await;

        // Update the table while still holding the flow's lock, so the next request sees it.
        let mut state = self.inner.state.lock();
        let still_ours = state
            .flows
            .get(flow_id)
            .is_some_and(|entry| Arc::ptr_eq(&entry.flow, &shared));
        match outcome {
            Err(error) => {
                if still_ours {
                    state.remove(flow_id);
                }
                Err(error)
            }
            Ok(result) => {
                if still_ours {
                    if result.is_finished() {
                        state.remove(flow_id);
                    } else if let Some(entry) = state.flows.get_mut(flow_id) {
                        entry.current = result.clone();
                        entry.last_activity = Instant::now();
                    }
                }
                drop(state);
                drop(flow);
                Ok(FlowResponse {
                    flow_id: flow_id.to_owned(),
                    handler,
                    result,
                })
            }
        }
    }

    /// Removes a flow (even one that is running a step).
    pub fn abort(&self, flow_id: &str) -> Result<(), FlowError> {
        let mut state = self.inner.state.lock();
        if self.inner.live(&mut state, flow_id).is_none() {
            return Err(FlowError::UnknownFlow);
        }
        state.remove(flow_id);
        Ok(())
    }

    /// The context the flow was started with.
    pub fn context(&self, flow_id: &str) -> Option<C> {
        let mut state = self.inner.state.lock();
        self.inner
            .live(&mut state, flow_id)
            .map(|entry| entry.context.clone())
    }

    /// The flow's current step as a response (for GET).
    pub fn current(&self, flow_id: &str) -> Option<FlowResponse> {
        let mut state = self.inner.state.lock();
        self.inner
            .live(&mut state, flow_id)
            .map(|entry| entry.response(flow_id))
    }

    /// The handler key the flow was started with.
    pub fn handler(&self, flow_id: &str) -> Option<Value> {
        let mut state = self.inner.state.lock();
        self.inner
            .live(&mut state, flow_id)
            .map(|entry| entry.handler.clone())
    }

    /// `(flow_id, handler, context)` of every live flow, oldest first.
    pub fn in_progress(&self) -> Vec<(String, Value, C)> {
        let now = Instant::now();
        let timeout = self.inner.limits.idle_timeout;
        let state = self.inner.state.lock();
        let mut live: Vec<(&String, &Entry<C>)> = state
            .flows
            .iter()
            .filter(|(_, entry)| !entry.is_expired(now, timeout))
            .collect();
        live.sort_by_key(|(_, entry)| entry.seq);
        live.into_iter()
            .map(|(id, entry)| (id.clone(), entry.handler.clone(), entry.context.clone()))
            .collect()
    }

    /// How many live flows the table holds (flows still running `init` not included).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        let timeout = self.inner.limits.idle_timeout;
        let state = self.inner.state.lock();
        state
            .flows
            .values()
            .filter(|entry| !entry.is_expired(now, timeout))
            .count()
    }

    /// Whether the table holds no live flow.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes flows idle for longer than the idle timeout; returns how many were removed.
    pub fn purge_expired(&self) -> usize {
        let now = Instant::now();
        let timeout = self.inner.limits.idle_timeout;
        let mut state = self.inner.state.lock();
        let expired: Vec<String> = state
            .flows
            .iter()
            .filter(|(_, entry)| entry.is_expired(now, timeout))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            state.remove(id);
        }
        expired.len()
    }
}

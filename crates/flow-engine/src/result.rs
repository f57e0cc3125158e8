//! Flow step results and their JSON shapes (Home Assistant's `FlowResult` dictionaries).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::schema::{Field, Schema};

/// What a flow step returns: show something to the user, or finish.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FlowResult {
    /// Show a form (`type: "form"`); the flow stays alive.
    Form {
        /// The step that receives the submitted form.
        step_id: String,
        /// The fields asked for; `None` serialises as `[]` and skips validation.
        data_schema: Option<Schema>,
        /// Field name (or `base`) to error key; `None` serialises as `null`.
        errors: Option<Map<String, Value>>,
        /// Values for the frontend's translation placeholders.
        description_placeholders: Option<Map<String, Value>>,
        /// Whether this is the last step (frontend shows "submit" instead of "next").
        last_step: Option<bool>,
        /// Name of a preview component, if any.
        preview: Option<String>,
    },
    /// Finish with an entry (`type: "create_entry"`); the flow is removed.
    CreateEntry {
        /// Entry title (serialised only if set).
        title: Option<String>,
        /// The entry data.
        data: Value,
        /// Description text.
        description: Option<String>,
        /// Values for the description's placeholders.
        description_placeholders: Option<Map<String, Value>>,
        /// The flow's context as echoed in the result (`{}` by default).
        context: Value,
    },
    /// Finish without an entry (`type: "abort"`); the flow is removed.
    Abort {
        /// Abort reason key, e.g. `login_expired`.
        reason: String,
        /// Values for the reason's placeholders.
        description_placeholders: Option<Map<String, Value>>,
    },
    /// Send the user to an external URL (`type: "external"`).
    ExternalStep {
        /// The step run when the external step reports back.
        step_id: String,
        /// Where to send the user.
        url: String,
        /// Values for the description's placeholders.
        description_placeholders: Option<Map<String, Value>>,
    },
    /// The external step is done (`type: "external_done"`); the next configure runs `step_id`.
    ExternalStepDone {
        /// The step to run next.
        step_id: String,
    },
    /// Show a progress indicator (`type: "progress"`).
    ShowProgress {
        /// The step run when progress is reported.
        step_id: String,
        /// Translation key of the running action.
        progress_action: String,
        /// Values for the description's placeholders.
        description_placeholders: Option<Map<String, Value>>,
    },
    /// Progress finished (`type: "progress_done"`); the next configure runs `step_id`.
    ShowProgressDone {
        /// The step to run next.
        step_id: String,
    },
    /// Show a menu of next steps (`type: "menu"`); input `{"next_step_id": x}` picks one.
    Menu {
        /// The menu's own step id.
        step_id: String,
        /// The steps the user can pick.
        menu_options: MenuOptions,
        /// Values for the description's placeholders.
        description_placeholders: Option<Map<String, Value>>,
        /// Whether the frontend should sort the options (serialised only if true).
        sort: bool,
    },
}

/// The choices of a menu: step ids, or step ids with labels.
#[derive(Clone, Debug, PartialEq)]
pub enum MenuOptions {
    /// Step ids (serialised as a JSON list).
    List(Vec<String>),
    /// `(step id, label)` pairs (serialised as a JSON object).
    Labeled(Vec<(String, String)>),
}

impl MenuOptions {
    /// Whether `step_id` is one of the options.
    pub fn contains(&self, step_id: &str) -> bool {
        match self {
            MenuOptions::List(ids) => ids.iter().any(|id| id == step_id),
            MenuOptions::Labeled(pairs) => pairs.iter().any(|(id, _)| id == step_id),
        }
    }

    /// The menu's input schema: one unmarked select field `next_step_id` over the options.
    pub fn schema(&self) -> Schema {
        let options = match self {
            MenuOptions::List(ids) => ids
                .iter()
                .map(|id| (id.clone(), Some(id.clone())))
                .collect(),
            MenuOptions::Labeled(pairs) => pairs
                .iter()
                .map(|(id, label)| (id.clone(), Some(label.clone())))
                .collect(),
        };
        Schema::new(vec![Field::select("next_step_id", options)])
    }
}

impl Serialize for MenuOptions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MenuOptions::List(ids) => ids.serialize(serializer),
            MenuOptions::Labeled(pairs) => {
                let mut map = serializer.serialize_map(Some(pairs.len()))?;
                for (id, label) in pairs {
                    map.serialize_entry(id, label)?;
                }
                map.end()
            }
        }
    }
}

impl FlowResult {
    /// A form for `step_id` with no errors, placeholders, last-step flag or preview.
    pub fn form(step_id: impl Into<String>, data_schema: Option<Schema>) -> Self {
        FlowResult::Form {
            step_id: step_id.into(),
            data_schema,
            errors: None,
            description_placeholders: None,
            last_step: None,
            preview: None,
        }
    }

    /// An abort with `reason` and no placeholders.
    pub fn abort(reason: impl Into<String>) -> Self {
        FlowResult::Abort {
            reason: reason.into(),
            description_placeholders: None,
        }
    }

    /// A created entry holding `data`, with no title or description and context `{}`.
    pub fn create_entry(data: Value) -> Self {
        FlowResult::CreateEntry {
            title: None,
            data,
            description: None,
            description_placeholders: None,
            context: Value::Object(Map::new()),
        }
    }

    /// A menu for `step_id` offering `menu_options`, unsorted.
    pub fn menu(step_id: impl Into<String>, menu_options: MenuOptions) -> Self {
        FlowResult::Menu {
            step_id: step_id.into(),
            menu_options,
            description_placeholders: None,
            sort: false,
        }
    }

    /// An external step for `step_id` sending the user to `url`.
    pub fn external_step(step_id: impl Into<String>, url: impl Into<String>) -> Self {
        FlowResult::ExternalStep {
            step_id: step_id.into(),
            url: url.into(),
            description_placeholders: None,
        }
    }

    /// External step finished; the next configure runs `next_step_id`.
    pub fn external_step_done(next_step_id: impl Into<String>) -> Self {
        FlowResult::ExternalStepDone {
            step_id: next_step_id.into(),
        }
    }

    /// A progress indicator for `step_id` showing `progress_action`.
    pub fn show_progress(step_id: impl Into<String>, progress_action: impl Into<String>) -> Self {
        FlowResult::ShowProgress {
            step_id: step_id.into(),
            progress_action: progress_action.into(),
            description_placeholders: None,
        }
    }

    /// Progress finished; the next configure runs `next_step_id`.
    pub fn show_progress_done(next_step_id: impl Into<String>) -> Self {
        FlowResult::ShowProgressDone {
            step_id: next_step_id.into(),
        }
    }

    /// Sets a form's `errors` (no effect on other types).
    #[must_use]
    pub fn with_errors(mut self, new: Map<String, Value>) -> Self {
        if let FlowResult::Form { errors, .. } = &mut self {
            *errors = Some(new);
        }
        self
    }

    /// Sets `description_placeholders` (no effect on types without them).
    #[must_use]
    pub fn with_placeholders(mut self, new: Map<String, Value>) -> Self {
        match &mut self {
            FlowResult::Form {
                description_placeholders,
                ..
            }
            | FlowResult::CreateEntry {
                description_placeholders,
                ..
            }
            | FlowResult::Abort {
                description_placeholders,
                ..
            }
            | FlowResult::ExternalStep {
                description_placeholders,
                ..
            }
            | FlowResult::ShowProgress {
                description_placeholders,
                ..
            }
            | FlowResult::Menu {
                description_placeholders,
                ..
            } => *description_placeholders = Some(new),
            FlowResult::ExternalStepDone { .. } | FlowResult::ShowProgressDone { .. } => {}
        }
        self
    }

    /// Sets a form's `last_step` flag (no effect on other types).
    #[must_use]
    pub fn with_last_step(mut self, new: bool) -> Self {
        if let FlowResult::Form { last_step, .. } = &mut self {
            *last_step = Some(new);
        }
        self
    }

    /// Sets a created entry's `title` (no effect on other types).
    #[must_use]
    pub fn with_title(mut self, new: impl Into<String>) -> Self {
        if let FlowResult::CreateEntry { title, .. } = &mut self {
            *title = Some(new.into());
        }
        self
    }

    /// Sets a created entry's `context` (no effect on other types).
    #[must_use]
    pub fn with_context(mut self, new: Value) -> Self {
        if let FlowResult::CreateEntry { context, .. } = &mut self {
            *context = new;
        }
        self
    }

    /// Whether the flow ends with this result (`CreateEntry` or `Abort`).
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            FlowResult::CreateEntry { .. } | FlowResult::Abort { .. }
        )
    }

    /// The step id carried by the result (`None` for `CreateEntry` and `Abort`).
    pub fn step_id(&self) -> Option<&str> {
        match self {
            FlowResult::Form { step_id, .. }
            | FlowResult::ExternalStep { step_id, .. }
            | FlowResult::ExternalStepDone { step_id }
            | FlowResult::ShowProgress { step_id, .. }
            | FlowResult::ShowProgressDone { step_id }
            | FlowResult::Menu { step_id, .. } => Some(step_id),
            FlowResult::CreateEntry { .. } | FlowResult::Abort { .. } => None,
        }
    }

    /// The `type` string of the JSON shape (`form`, `create_entry`, `abort`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            FlowResult::Form { .. } => "form",
            FlowResult::CreateEntry { .. } => "create_entry",
            FlowResult::Abort { .. } => "abort",
            FlowResult::ExternalStep { .. } => "external",
            FlowResult::ExternalStepDone { .. } => "external_done",
            FlowResult::ShowProgress { .. } => "progress",
            FlowResult::ShowProgressDone { .. } => "progress_done",
            FlowResult::Menu { .. } => "menu",
        }
    }

    /// The schema submitted input is validated against (a form's, or a menu's `next_step_id`).
    pub fn input_schema(&self) -> Option<Schema> {
        match self {
            FlowResult::Form { data_schema, .. } => data_schema.clone(),
            FlowResult::Menu { menu_options, .. } => Some(menu_options.schema()),
            _ => None,
        }
    }
}

/// A flow result addressed to a client: the flow's id and handler plus the result.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowResponse {
    /// The flow's id (32 lowercase hex characters when made by the manager).
    pub flow_id: String,
    /// The flow's handler key, e.g. `["homeassistant", null]` or `"totp"`.
    pub handler: Value,
    /// The step result.
    pub result: FlowResult,
}

impl FlowResponse {
    /// The response as a JSON object with Home Assistant's key order.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a flow response always serialises to JSON")
    }
}

/// An empty schema list, for forms without a `data_schema`.
const EMPTY_SCHEMA: [(); 0] = [];

impl Serialize for FlowResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.result.type_name())?;
        map.serialize_entry("flow_id", &self.flow_id)?;
        map.serialize_entry("handler", &self.handler)?;
        match &self.result {
            FlowResult::Form {
                step_id,
                data_schema,
                errors,
                description_placeholders,
                last_step,
                preview,
            } => {
                match data_schema {
                    Some(schema) => map.serialize_entry("data_schema", schema)?,
                    None => map.serialize_entry("data_schema", &EMPTY_SCHEMA)?,
                }
                map.serialize_entry("errors", errors)?;
                map.serialize_entry("description_placeholders", description_placeholders)?;
                map.serialize_entry("last_step", last_step)?;
                map.serialize_entry("preview", preview)?;
                map.serialize_entry("step_id", step_id)?;
            }
            FlowResult::CreateEntry {
                title,
                data,
                description,
                description_placeholders,
                context,
            } => {
                map.serialize_entry("data", data)?;
                map.serialize_entry("description", description)?;
                map.serialize_entry("description_placeholders", description_placeholders)?;
                map.serialize_entry("context", context)?;
                if let Some(title) = title {
                    map.serialize_entry("title", title)?;
                }
            }
            FlowResult::Abort {
                reason,
                description_placeholders,
            } => {
                map.serialize_entry("reason", reason)?;
                map.serialize_entry("description_placeholders", description_placeholders)?;
            }
            FlowResult::ExternalStep {
                step_id,
                url,
                description_placeholders,
            } => {
                map.serialize_entry("url", url)?;
                map.serialize_entry("description_placeholders", description_placeholders)?;
                map.serialize_entry("step_id", step_id)?;
            }
            FlowResult::ExternalStepDone { step_id } | FlowResult::ShowProgressDone { step_id } => {
                map.serialize_entry("step_id", step_id)?;
            }
            FlowResult::ShowProgress {
                step_id,
                progress_action,
                description_placeholders,
            } => {
                map.serialize_entry("progress_action", progress_action)?;
                map.serialize_entry("description_placeholders", description_placeholders)?;
                map.serialize_entry("step_id", step_id)?;
            }
            FlowResult::Menu {
                step_id,
                menu_options,
                description_placeholders,
                sort,
            } => {
                map.serialize_entry("data_schema", &menu_options.schema())?;
                map.serialize_entry("menu_options", menu_options)?;
                map.serialize_entry("description_placeholders", description_placeholders)?;
                if *sort {
                    map.serialize_entry("sort", &true)?;
                }
                map.serialize_entry("step_id", step_id)?;
            }
        }
        map.end()
    }
}

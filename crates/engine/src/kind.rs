//! What a job kind is: validated parameters and a handler. Kinds live in their own
//! crate and are handed to the engine in a [`Registry`]; the engine knows none of them.

use crate::ctx::JobCtx;
use async_trait::async_trait;
use forklift_rpc::v1::{self as pb, job_params};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field, relative to the kind's parameters, e.g. `sizes[0].width`.
    pub field: String,
    /// What is wrong and what is allowed, for a user to act on.
    pub description: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Why an attempt did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Retrying cannot help (corrupt input, unsupported file): the job fails at once.
    #[error("{0}")]
    Permanent(String),
    /// A passing problem: the job is retried with backoff while attempts remain.
    #[error("{0}")]
    Retryable(String),
    /// The attempt saw its cancellation token tripped and stopped.
    #[error("cancelled")]
    Cancelled,
}

impl JobError {
    /// A permanent failure with a message for the user.
    pub fn permanent(msg: impl Into<String>) -> Self {
        Self::Permanent(msg.into())
    }

    /// A retryable failure with a message for the user.
    pub fn retryable(msg: impl Into<String>) -> Self {
        Self::Retryable(msg.into())
    }
}

/// A kind of job: its parameters, where it runs, and its handler.
#[async_trait]
pub trait Kind: Send + Sync + 'static {
    /// The kind's name, e.g. `image.thumbnail`.
    fn name(&self) -> &'static str;

    /// The queue its jobs run on, e.g. `media`.
    fn queue(&self) -> &'static str;

    /// The proto `JobParams` field that selects this kind, e.g. `image_thumbnail`.
    fn proto_field(&self) -> &'static str;

    /// Longest an attempt may run before it is stopped (and retried).
    fn timeout(&self) -> Duration {
        Duration::from_secs(600)
    }

    /// Attempts allowed when the submitter does not say.
    fn default_max_attempts(&self) -> u32 {
        3
    }

    /// `Err(reason)` when this server cannot run the kind (a tool is missing, or the
    /// kind is disabled): submits are refused with the reason. A kind that checks its
    /// tools in the background from start-up may wait here for that check to end.
    fn available(&self) -> Result<(), String> {
        Ok(())
    }

    /// How clients present the kind: title, description, what a form's button says,
    /// the parameters (types, limits, defaults, choices) and the inputs it takes. The
    /// registry fills in what the trait already says (name, queue, params field,
    /// timeout, attempts) and whether it can run here ([`Registry::describe`]).
    fn describe(&self) -> pb::KindInfo;

    /// If `p` is this kind's proto parameters, their JSON form (not yet validated).
    fn params_from_proto(&self, p: &job_params::Kind) -> Option<serde_json::Value>;

    /// The proto form of validated parameters.
    fn params_to_proto(&self, params: &serde_json::Value) -> Option<job_params::Kind>;

    /// Checks parameters and the number of inputs; returns them with defaults filled
    /// in. Field names are relative to the parameters; use `input_file_ids` for inputs.
    fn validate(
        &self,
        params: serde_json::Value,
        inputs: usize,
    ) -> Result<serde_json::Value, Vec<Violation>>;

    /// Runs one attempt. Outputs are written through `ctx`; they count only if this
    /// returns `Ok`.
    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError>;
}

/// The kinds a server knows, by name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn Kind>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind.
    pub fn register(&mut self, kind: impl Kind) -> &mut Self {
        self.kinds.insert(kind.name(), Arc::new(kind));
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Kind>> {
        self.kinds.get(name)
    }

    /// The kind whose proto parameters `p` are, with their JSON form.
    pub fn kind_for_proto(
        &self,
        p: &job_params::Kind,
    ) -> Option<(&Arc<dyn Kind>, serde_json::Value)> {
        self.kinds
            .values()
            .find_map(|k| k.params_from_proto(p).map(|v| (k, v)))
    }

    /// Every kind's description (`Jobs.ListKinds`), sorted by name. Asks each kind
    /// [`Kind::available`], which may wait for a check of its tools: call it off the
    /// async runtime.
    pub fn describe(&self) -> Vec<pb::KindInfo> {
        self.kinds
            .values()
            .map(|k| {
                let available = k.available();
                pb::KindInfo {
                    name: k.name().to_owned(),
                    queue: k.queue().to_owned(),
                    params_field: k.proto_field().to_owned(),
                    default_max_attempts: k.default_max_attempts(),
                    timeout_seconds: u32::try_from(k.timeout().as_secs()).unwrap_or(u32::MAX),
                    available: available.is_ok(),
                    unavailable_reason: available.err().unwrap_or_default(),
                    ..k.describe()
                }
            })
            .collect()
    }

    /// Every kind.
    pub fn kinds(&self) -> impl Iterator<Item = &Arc<dyn Kind>> {
        self.kinds.values()
    }

    /// Every queue some available kind runs on, sorted, without repeats. Asks each
    /// kind [`Kind::available`], which may wait for a check of its tools.
    pub fn queues(&self) -> Vec<&'static str> {
        self.queues_where(|k| k.available().is_ok())
    }

    /// Every queue of every kind, whether it can run here or not; never waits.
    pub fn all_queues(&self) -> Vec<&'static str> {
        self.queues_where(|_| true)
    }

    fn queues_where(&self, keep: impl Fn(&Arc<dyn Kind>) -> bool) -> Vec<&'static str> {
        let mut q: Vec<_> = self
            .kinds
            .values()
            .filter(|k| keep(k))
            .map(|k| k.queue())
            .collect();
        q.sort_unstable();
        q.dedup();
        q
    }
}

/// Deserialises parameters into a kind's own type, turning serde's complaint into a
/// violation.
pub fn parse_params<P: serde::de::DeserializeOwned>(
    params: serde_json::Value,
) -> Result<P, Vec<Violation>> {
    serde_json::from_value(params).map_err(|e| vec![Violation::new("params", e.to_string())])
}

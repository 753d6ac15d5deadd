//! What a job kind is: validated parameters and a handler. Kinds live in their own
//! crate and are handed to the runner in a [`Registry`]; the runner knows none of them.

use crate::ctx::JobCtx;
use async_trait::async_trait;
use forklift_rpc::params::ParamsCodec;
use forklift_rpc::v1 as pb;
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
    ///
    /// The parameters described are also how they convert between their JSON form and
    /// `JobParams` (one [`ParamsCodec`] for every kind): each one names a field of the
    /// kind's proto message and of the JSON [`Kind::validate`] reads.
    fn describe(&self) -> pb::KindInfo;

    /// Checks parameters and the number of inputs; returns them with defaults filled
    /// in. Field names are relative to the parameters; use `input_file_ids` for inputs.
    ///
    /// Parameters from gRPC arrive as the codec reads them: every described field set
    /// (a proto default where the client left one out; an UNSPECIFIED enum as the
    /// field's `default_json`), and any number at all, including an enum number that
    /// is no choice. Types wide enough for the proto's let the checks here, not the
    /// deserialiser, say what is wrong.
    fn validate(
        &self,
        params: serde_json::Value,
        inputs: usize,
    ) -> Result<serde_json::Value, Vec<Violation>>;

    /// Runs one attempt. Outputs are written through `ctx`; they count only if this
    /// returns `Ok`.
    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError>;
}

/// The kinds a server knows, by name, with their descriptions, and the one codec that
/// converts every kind's parameters between JSON and `JobParams`.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Registered>,
    codec: ParamsCodec,
}

/// A kind and its description, made once at [`Registry::register`] (whether it is
/// available is asked for each time).
#[derive(Clone)]
struct Registered {
    kind: Arc<dyn Kind>,
    info: pb::KindInfo,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind.
    pub fn register(&mut self, kind: impl Kind) -> &mut Self {
        let info = pb::KindInfo {
            name: kind.name().to_owned(),
            queue: kind.queue().to_owned(),
            params_field: kind.proto_field().to_owned(),
            default_max_attempts: kind.default_max_attempts(),
            timeout_seconds: u32::try_from(kind.timeout().as_secs()).unwrap_or(u32::MAX),
            ..kind.describe()
        };
        let kind = Arc::new(kind);
        self.kinds.insert(kind.name(), Registered { kind, info });
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Kind>> {
        self.kinds.get(name).map(|r| &r.kind)
    }

    /// The kind `p` selects (by the `JobParams` field it sets), with the parameters'
    /// JSON form, not yet validated.
    pub fn params_from_proto(
        &self,
        p: &pb::JobParams,
    ) -> Option<(&Arc<dyn Kind>, serde_json::Value)> {
        let field = self.codec.params_field(p)?;
        let r = self.kinds.values().find(|r| r.info.params_field == field)?;
        Some((&r.kind, self.codec.to_json(&r.info, p)))
    }

    /// The proto form of validated parameters of the kind called `kind`; `None` for a
    /// kind this server does not know, or parameters its description cannot carry.
    pub fn params_to_proto(&self, kind: &str, params: &serde_json::Value) -> Option<pb::JobParams> {
        let r = self.kinds.get(kind)?;
        self.codec.to_proto(&r.info, params).ok()
    }

    /// Every kind's description (`Jobs.ListKinds`), sorted by name. Asks each kind
    /// [`Kind::available`], which may wait for a check of its tools: call it off the
    /// async runtime.
    pub fn describe(&self) -> Vec<pb::KindInfo> {
        self.kinds
            .values()
            .map(|r| {
                let available = r.kind.available();
                pb::KindInfo {
                    available: available.is_ok(),
                    unavailable_reason: available.err().unwrap_or_default(),
                    ..r.info.clone()
                }
            })
            .collect()
    }

    /// Every kind.
    pub fn kinds(&self) -> impl Iterator<Item = &Arc<dyn Kind>> {
        self.kinds.values().map(|r| &r.kind)
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
            .kinds()
            .filter(|k| keep(k))
            .map(|k| k.queue())
            .collect();
        q.sort_unstable();
        q.dedup();
        q
    }
}

/// Deserialises parameters into a kind's own type, turning serde's complaint into a
/// violation of the field it is about (`params` when it is about them all, e.g. a
/// missing field).
pub fn parse_params<P: serde::de::DeserializeOwned>(
    params: serde_json::Value,
) -> Result<P, Vec<Violation>> {
    serde_path_to_error::deserialize(params).map_err(|e| {
        let field = match e.path().to_string() {
            root if root == "." => "params".to_owned(),
            path => path,
        };
        vec![Violation::new(field, e.into_inner().to_string())]
    })
}

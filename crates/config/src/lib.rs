#![doc = include_str!("../README.md")]
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The web app's settings (it hosts the jobs service when unified).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "forklift-web",
    version,
    args_override_self = true,
    about = "Forklift: upload files, run heavy jobs on them, download the results."
)]
pub struct WebConfig {
    /// Address the HTTP server (pages, JSON API, health) listens on.
    #[arg(long, env = "FORKLIFT_HTTP_ADDR", default_value = "127.0.0.1:3000")]
    pub http_addr: SocketAddr,
    /// Address the gRPC API listens on (unified mode).
    #[arg(long, env = "FORKLIFT_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// The jobs service's gRPC address, e.g. `http://127.0.0.1:50051`. When set, the web
    /// app runs no jobs and calls the jobs service instead (extracted mode).
    #[arg(long, env = "FORKLIFT_JOBS_URL")]
    pub jobs_url: Option<String>,
    /// Mark cookies `Secure` (set when the site is served over HTTPS).
    #[arg(long, env = "FORKLIFT_SECURE_COOKIES", default_value = "false", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub secure_cookies: bool,
    /// Failed sign-ins allowed per account per 15 minutes before sign-in is refused
    /// for a while (0: no limit).
    #[arg(long, env = "FORKLIFT_SIGNIN_ATTEMPTS", default_value_t = 5)]
    pub signin_attempts: u32,
    /// Jobs a user may submit per minute over the web and JSON API (0: no limit).
    #[arg(long, env = "FORKLIFT_SUBMIT_PER_MINUTE", default_value_t = 120)]
    pub submit_per_minute: u32,
    /// The site's public address, e.g. `https://forklift.example.com`, for absolute
    /// links in shared-page previews (OpenGraph). Unset: taken from each request's Host.
    #[arg(long, env = "FORKLIFT_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Settings shared with the jobs service.
    #[command(flatten)]
    pub common: CommonConfig,
}

/// The jobs service's settings.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "forklift-jobs",
    version,
    args_override_self = true,
    about = "Forklift's jobs service: the Files, Jobs and Admin gRPC API and the workers."
)]
pub struct JobsConfig {
    /// What this process does: serve the API, run jobs, or both.
    #[arg(long, env = "FORKLIFT_ROLE", value_enum, default_value_t = ProcessRole::Both)]
    pub role: ProcessRole,
    /// Address the gRPC API listens on (roles api and both).
    #[arg(long, env = "FORKLIFT_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Address of the HTTP endpoints /healthz, /readyz and /metrics.
    #[arg(long, env = "FORKLIFT_HTTP_ADDR", default_value = "127.0.0.1:3001")]
    pub http_addr: SocketAddr,
    /// Apply the database migrations and exit (for a migration job before a rollout).
    #[arg(long, env = "FORKLIFT_MIGRATE_ONLY", default_value = "false", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub migrate_only: bool,
    /// Settings shared with the web app.
    #[command(flatten)]
    pub common: CommonConfig,
    /// A one-off command instead of serving.
    #[command(subcommand)]
    pub command: Option<JobsCommand>,
}

/// One-off commands of `forklift-jobs`; they use the same settings (the database URL
/// above all) and exit.
#[derive(Debug, Clone, Subcommand)]
pub enum JobsCommand {
    /// Accounts: create users and API tokens in the record, e.g. the first admin with
    /// `kubectl exec deploy/forklift-jobs-api -- forklift-jobs admin create-user --email
    /// you@example.com --admin`.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// `forklift-jobs admin …`.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Creates an account that signs in to the web app. Prints a generated password
    /// (shown once) unless `--password-stdin` reads one; fails if the email is taken.
    CreateUser {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// Make the account an admin (sees the admin console and every user's jobs).
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input instead.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Creates an API token (for gRPC and the JSON API) for an existing account and
    /// prints it; only its hash is stored, so it cannot be shown again.
    CreateToken {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// A name to recognise the token by on the API tokens page.
        #[arg(long, default_value = "created by an operator")]
        name: String,
    },
    /// Copies a stopped installation's accounts, API tokens, files (content checked by
    /// SHA-256) and jobs into another database and storage, ids unchanged — e.g. a
    /// unified one's `sqlite://data/forklift.db` and `file:///…/data/files` into
    /// PostgreSQL and S3. The source is only read; run it again to go on after an
    /// interruption. Sessions are not copied (users sign in again).
    Migrate {
        /// The source database: `sqlite://PATH` or `postgres://…`.
        #[arg(long)]
        from_database: String,
        /// The source storage: `file:///PATH` (a unified installation's `data/files`)
        /// or `s3://BUCKET[/PREFIX]`.
        #[arg(long)]
        from_storage: String,
        /// The target database (migrated first if new).
        #[arg(long, required_unless_present = "dry_run")]
        to_database: Option<String>,
        /// The target storage.
        #[arg(long, required_unless_present = "dry_run")]
        to_storage: Option<String>,
        /// Only count the rows, objects and bytes there are to copy.
        #[arg(long)]
        dry_run: bool,
    },
}

/// What a jobs-service process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProcessRole {
    /// Serve the Files, Jobs and Admin gRPC API; run no jobs.
    Api,
    /// Run jobs from the configured queues; serve only health and metrics.
    Worker,
    /// Both.
    Both,
}

/// Settings every Forklift process shares.
#[derive(Debug, Clone, Args)]
pub struct CommonConfig {
    /// Directory for the embedded database, stored files and the first admin token.
    #[arg(long, env = "FORKLIFT_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB`; default: an SQLite
    /// file in the data directory.
    #[arg(long, env = "FORKLIFT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where files live: `file:///PATH` or `s3://BUCKET[/PREFIX]` (S3-compatible, set up
    /// by the AWS_* variables); default: `files/` in the data directory. Every process
    /// of a deployment must use the same storage.
    #[arg(long, env = "FORKLIFT_STORAGE_URL")]
    pub storage_url: Option<String>,
    /// Redis URL, e.g. `redis://127.0.0.1:6379/`. When set, jobs move through Redis and
    /// events through Redis pub/sub, shared by every process; otherwise in-process.
    #[arg(long, env = "FORKLIFT_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Log filter, e.g. `info` or `forklift_runner=debug,info`.
    #[arg(long, env = "FORKLIFT_LOG", default_value = "info")]
    pub log: String,
    /// Log format.
    #[arg(long, env = "FORKLIFT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Queues this process consumes with their job slots, e.g. `media=4,debug=8`.
    /// Default: every queue, with FORKLIFT_CONCURRENCY slots each.
    #[arg(long, env = "FORKLIFT_QUEUES", value_parser = parse_queues)]
    pub queues: Option<QueueSlots>,
    /// Job slots per queue when FORKLIFT_QUEUES does not say; default: CPU cores.
    #[arg(long, env = "FORKLIFT_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Threads for CPU-heavy work (decoding, resizing), shared by all queues;
    /// default: CPU cores.
    #[arg(long, env = "FORKLIFT_CPU_THREADS")]
    pub cpu_threads: Option<usize>,
    /// How long a worker's claim on a job holds without renewal, e.g. `30s`.
    #[arg(long, env = "FORKLIFT_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub lease: Duration,
    /// How long running jobs may finish after SIGTERM before they are requeued.
    #[arg(long, env = "FORKLIFT_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// First retry delay after a retryable failure; doubles per attempt, with jitter.
    #[arg(long, env = "FORKLIFT_RETRY_BASE", default_value = "2s", value_parser = parse_duration)]
    pub retry_base: Duration,
    /// Longest retry delay.
    #[arg(long, env = "FORKLIFT_RETRY_MAX", default_value = "5m", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// How often the maintenance ticks come (rounded up to whole seconds): each worker
    /// reports itself, and one worker of the deployment looks for jobs whose worker died.
    #[arg(long, env = "FORKLIFT_RECONCILE_EVERY", default_value = "5s", value_parser = parse_duration)]
    pub reconcile_every: Duration,
    /// Largest upload accepted, in MiB.
    #[arg(long, env = "FORKLIFT_MAX_UPLOAD_MB", default_value_t = 512)]
    pub max_upload_mb: u64,
    /// Largest image input, in MiB.
    #[arg(long, env = "FORKLIFT_IMAGE_MAX_INPUT_MB", default_value_t = 64)]
    pub image_max_input_mb: u64,
    /// Largest image input, in megapixels.
    #[arg(long, env = "FORKLIFT_IMAGE_MAX_MEGAPIXELS", default_value_t = 100)]
    pub image_max_megapixels: u64,
    /// The ffmpeg program for video jobs; default: `ffmpeg` on the PATH. Video jobs are
    /// unavailable when it cannot be found.
    #[arg(long, env = "FORKLIFT_FFMPEG")]
    pub ffmpeg: Option<PathBuf>,
    /// The ffprobe program; default: beside FORKLIFT_FFMPEG, or on the PATH.
    #[arg(long, env = "FORKLIFT_FFPROBE")]
    pub ffprobe: Option<PathBuf>,
    /// Largest video input, in MiB.
    #[arg(long, env = "FORKLIFT_VIDEO_MAX_INPUT_MB", default_value_t = 4096)]
    pub video_max_input_mb: u64,
    /// Enable the `debug.*` job kinds (tests and benchmarks only).
    #[arg(long, env = "FORKLIFT_DEBUG_KINDS", default_value = "false", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub debug_kinds: bool,
    /// Shared secret the web app presents to a separate jobs service.
    #[arg(long, env = "FORKLIFT_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
    /// This process's worker name (must be unique); default: host, pid and a random suffix.
    #[arg(long, env = "FORKLIFT_WORKER_NAME")]
    pub worker_name: Option<String>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Queue names and their job slots.
pub type QueueSlots = BTreeMap<String, usize>;

/// A configuration error, its message naming the variable and flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Parses configuration from the environment and the command line. Help and version
/// requests print and exit; errors name the environment variable.
pub fn parse<T: Parser>() -> Result<T, ConfigError> {
    parse_from::<T, _, _>(std::env::args_os())
}

/// [`parse`] with explicit arguments (the first is the program name).
pub fn parse_from<T, I, A>(args: I) -> Result<T, ConfigError>
where
    T: Parser,
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = T::command();
    let matches = match cmd.try_get_matches_from_mut(args) {
        Ok(m) => m,
        Err(e) => return Err(explain(&cmd, e)),
    };
    T::from_arg_matches(&matches).map_err(|e| explain(&cmd, e))
}

fn explain(cmd: &clap::Command, e: clap::Error) -> ConfigError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let env = arg.as_deref().and_then(|a| {
        let long = a.trim_start_matches("--").split([' ', '=']).next()?;
        cmd.get_arguments()
            .find(|x| x.get_long() == Some(long))
            .and_then(|x| x.get_env())
            .map(|v| v.to_string_lossy().into_owned())
    });
    let detail = e.render().to_string();
    let detail = detail.trim().trim_start_matches("error: ");
    match env {
        Some(env) => ConfigError(format!("configuration error in {env}: {detail}")),
        None => ConfigError(format!("configuration error: {detail}")),
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 30s, 5m or 1h"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("unknown unit {u:?} in {s:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses `FORKLIFT_PUBLIC_URL`: an http(s) origin, kept without a trailing slash.
fn parse_public_url(s: &str) -> Result<String, String> {
    let t = s.trim().trim_end_matches('/');
    let rest = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .ok_or_else(|| format!("{s:?} is not an http:// or https:// address"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '"', '<', '>']) {
        return Err(format!(
            "{s:?} must be a scheme and host only, e.g. https://forklift.example.com"
        ));
    }
    Ok(t.to_owned())
}

/// Parses `media=4,debug=8` (a queue without `=N` gets 0, meaning the default).
pub fn parse_queues(s: &str) -> Result<QueueSlots, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, n) = match part.split_once('=') {
            Some((name, n)) => (
                name.trim(),
                n.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("{part:?}: the slot count must be a whole number"))?,
            ),
            None => (part, 0),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "{name:?} is not a queue name (letters, digits, - and _)"
            ));
        }
        out.insert(name.to_owned(), n);
    }
    Ok(out)
}

impl CommonConfig {
    /// The database URL to use.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("forklift.db").display()))
    }

    /// The slots of each queue this process consumes, given every queue that exists.
    pub fn queue_slots(&self, all_queues: &[&str]) -> QueueSlots {
        let default = self
            .concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        match &self.queues {
            Some(q) => q
                .iter()
                .map(|(k, &v)| (k.clone(), if v == 0 { default } else { v }))
                .collect(),
            None => all_queues
                .iter()
                .map(|q| ((*q).to_owned(), default))
                .collect(),
        }
    }

    /// This process's worker name.
    pub fn worker_name(&self) -> String {
        self.worker_name.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into());
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            format!("{host}-{}-{:04x}", std::process::id(), nanos & 0xffff)
        })
    }
}

/// Sets up logging to stderr in the configured format and filter.
pub fn init_logging(format: LogFormat, filter: &str) -> Result<(), ConfigError> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| ConfigError(format!("configuration error in FORKLIFT_LOG: {e}")))?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| ConfigError(format!("logging could not be set up: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn queues_parse() {
        let q = parse_queues("media=4, debug").unwrap();
        assert_eq!(q.get("media"), Some(&4));
        assert_eq!(q.get("debug"), Some(&0));
        assert!(parse_queues("media=lots").is_err());
        assert!(parse_queues("a b=1").is_err());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err =
            parse_from::<WebConfig, _, _>(["forklift-web", "--http-addr", "nowhere"]).unwrap_err();
        assert!(err.0.contains("FORKLIFT_HTTP_ADDR"), "{err}");
        let err =
            parse_from::<WebConfig, _, _>(["forklift-web", "--lease", "forever"]).unwrap_err();
        assert!(err.0.contains("FORKLIFT_LEASE"), "{err}");
        let ok = parse_from::<WebConfig, _, _>(["forklift-web", "--debug-kinds", "true"]).unwrap();
        assert!(ok.common.debug_kinds);
        assert_eq!(ok.common.queue_slots(&["media"]).len(), 1);
    }
}

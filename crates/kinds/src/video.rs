//! `video.transcode`: one video to an MP4 (H.264 + AAC) at 360, 720 or 1080 lines —
//! never taller than the source — and a JPEG poster frame, with ffmpeg as a child
//! process. Cancellation and timeouts kill ffmpeg's whole process group. Without
//! ffmpeg on the server the kind is unavailable, and submits say why.

use crate::describe::{self, Param};
use async_trait::async_trait;
use forklift_rpc::v1 as pb;
use forklift_runner::{JobCtx, JobError, Kind, Violation, parse_params};
use forklift_video::{Height, Tools, TranscodeOptions, Unavailable, VideoError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Parameters of `video.transcode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// 360, 720 or 1080.
    pub height: u32,
}

/// Where to find ffmpeg.
#[derive(Debug, Clone, Default)]
pub struct VideoConfig {
    /// The ffmpeg program; `None` to look on the PATH.
    pub ffmpeg: Option<PathBuf>,
    /// The ffprobe program; `None` for beside ffmpeg, or on the PATH.
    pub ffprobe: Option<PathBuf>,
    /// Largest input in bytes.
    pub max_input_bytes: u64,
}

/// The `video.transcode` kind.
pub struct Transcode {
    /// Which ffmpeg, once checked; the check starts when the kind is made.
    tools: Arc<OnceLock<Result<Tools, Unavailable>>>,
    /// The configured ffmpeg and ffprobe; `None` to look for them (see
    /// [`Tools::configured`]).
    paths: (Option<PathBuf>, Option<PathBuf>),
    max_input_bytes: u64,
}

impl Transcode {
    /// The kind. It looks for ffmpeg and checks what it can do (a few runs of ffmpeg
    /// and ffprobe, a few hundred milliseconds) on a thread of its own, so that the
    /// server's start does not wait; [`Kind::available`] waits for that check.
    pub fn new(cfg: &VideoConfig) -> Self {
        let paths = (cfg.ffmpeg.clone(), cfg.ffprobe.clone());
        let kind = Self {
            tools: Arc::default(),
            paths,
            max_input_bytes: cfg.max_input_bytes,
        };
        let (tools, paths) = (kind.tools.clone(), kind.paths.clone());
        let started = std::thread::Builder::new()
            .name("ffmpeg-check".into())
            .spawn(move || {
                tools.get_or_init(|| find_tools(&paths));
            });
        if let Err(e) = started {
            // Not fatal: the first question of availability makes the check instead.
            tracing::warn!(error = %e, "checking ffmpeg in the background failed to start: {e}");
        }
        kind
    }

    /// The checked tools; waits for the start-up check if it is still running.
    fn tools(&self) -> &Result<Tools, Unavailable> {
        self.tools.get_or_init(|| find_tools(&self.paths))
    }
}

/// Finds and checks ffmpeg and ffprobe, logging why video jobs cannot run if not.
fn find_tools(
    (ffmpeg, ffprobe): &(Option<PathBuf>, Option<PathBuf>),
) -> Result<Tools, Unavailable> {
    let tools = Tools::configured(ffmpeg.clone(), ffprobe.clone());
    if let Err(e) = &tools {
        tracing::warn!(
            reason = e.reason(),
            "video jobs are unavailable: {}",
            e.reason()
        );
    }
    tools
}

#[async_trait]
impl Kind for Transcode {
    fn name(&self) -> &'static str {
        "video.transcode"
    }
    fn queue(&self) -> &'static str {
        "video"
    }
    fn proto_field(&self) -> &'static str {
        "video_transcode"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(4 * 3600)
    }
    fn available(&self) -> Result<(), String> {
        self.tools()
            .as_ref()
            .map(|_| ())
            .map_err(|e| e.reason().to_owned())
    }

    fn describe(&self) -> pb::KindInfo {
        pb::KindInfo {
            accepts: vec!["video/".into()],
            fields: describe::fields(vec![
                Param::integer("height", "Height")
                    .choices(&[("360", "360p"), ("720", "720p"), ("1080", "1080p")])
                    .default(json!(720))
                    .help("Never upscaled: a smaller source keeps its size."),
            ]),
            ..describe::kind(
                "Web video (H.264 MP4)",
                "One video to an H.264/AAC MP4 at the chosen height and a poster frame.",
                "Transcode",
            )
        }
    }

    fn validate(&self, v: Value, inputs: usize) -> Result<Value, Vec<Violation>> {
        let mut violations = Vec::new();
        if inputs != 1 {
            violations.push(Violation::new(
                "input_file_ids",
                "video.transcode takes exactly one video",
            ));
        }
        let mut p: Params = parse_params(v)?;
        if p.height == 0 {
            p.height = 720;
        }
        if Height::try_from(p.height).is_err() {
            violations.push(Violation::new(
                "height",
                "one of 360, 720 or 1080 (0 for 720)",
            ));
        }
        if violations.is_empty() {
            Ok(json!(p))
        } else {
            Err(violations)
        }
    }

    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let tools = self
            .tools()
            .as_ref()
            .map_err(|e| JobError::permanent(e.reason().to_owned()))?;
        let params: Params = ctx.params()?;
        let height = Height::try_from(params.height)
            .map_err(|_| JobError::permanent(format!("unsupported height {}", params.height)))?;
        ctx.progress(0, "receiving the video").await;
        let input = ctx.input_to_file(0, self.max_input_bytes).await?;
        let out = ctx.scratch_dir()?.join("out");
        tokio::fs::create_dir_all(&out).await.map_err(|e| {
            JobError::retryable(format!("creating a scratch directory failed: {e}"))
        })?;
        let opts = TranscodeOptions::new(height);
        let (tx, mut rx) = tokio::sync::watch::channel(0.0f64);
        let mut on_progress = move |f: f64| {
            let _ = tx.send(f);
        };
        let cancel = ctx.cancellation().clone();
        let reporter = ctx.reporter();
        let work = forklift_video::transcode(tools, &input, &out, &opts, &mut on_progress, &cancel);
        tokio::pin!(work);
        let done = loop {
            tokio::select! {
                r = &mut work => break r.map_err(describe)?,
                Ok(()) = rx.changed() => {
                    let f = *rx.borrow_and_update();
                    reporter.report((f * 95.0) as u32, "transcoding").await;
                }
            }
        };
        ctx.progress(96, "storing the results").await;
        ctx.put_output_file(forklift_video::VIDEO_FILE, "video/mp4", &done.video)
            .await?;
        ctx.put_output_file(forklift_video::POSTER_FILE, "image/jpeg", &done.poster)
            .await?;
        ctx.progress(100, "done").await;
        Ok(())
    }
}

fn describe(e: VideoError) -> JobError {
    match e {
        VideoError::Cancelled => JobError::Cancelled,
        e if e.is_permanent() => JobError::permanent(e.to_string()),
        e => JobError::retryable(e.to_string()),
    }
}

//! Converting a video to an MP4 browsers play everywhere, plus a JPEG poster frame.

use crate::{
    error::VideoError,
    probe::{DEMUXERS, MediaInfo, file_url, probe_until},
    process::{self, LineSplitter, Stop},
    tools::Tools,
};
use std::{
    ffi::OsString,
    num::NonZeroUsize,
    path::{Path, PathBuf},
    time::Duration,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// File name of the converted video inside the output directory.
pub const VIDEO_FILE: &str = "video.mp4";
/// File name of the poster frame inside the output directory.
pub const POSTER_FILE: &str = "poster.jpg";

/// The highest progress reported before the poster is written; 1.0 means all done.
const BEFORE_POSTER: f64 = 0.99;

/// An output height the service offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Height {
    /// 360 lines.
    P360,
    /// 720 lines (HD).
    P720,
    /// 1080 lines (full HD).
    P1080,
}

impl Height {
    /// The height in pixels.
    pub fn pixels(self) -> u32 {
        match self {
            Self::P360 => 360,
            Self::P720 => 720,
            Self::P1080 => 1080,
        }
    }
}

/// A height that is not one of [`Height`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("height {0} is not offered; choose 360, 720 or 1080")]
pub struct UnsupportedHeight(pub u32);

impl TryFrom<u32> for Height {
    type Error = UnsupportedHeight;

    fn try_from(pixels: u32) -> Result<Self, Self::Error> {
        match pixels {
            360 => Ok(Self::P360),
            720 => Ok(Self::P720),
            1080 => Ok(Self::P1080),
            other => Err(UnsupportedHeight(other)),
        }
    }
}

/// How to transcode. Build with [`TranscodeOptions::new`], then change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TranscodeOptions {
    /// The output height; a smaller source keeps its own height (rounded down to even).
    pub height: Height,
    /// Give up after this long (probing, converting and the poster together), killing ffmpeg.
    pub timeout: Option<Duration>,
    /// ffmpeg's `-threads`; by default ffmpeg uses every core.
    pub threads: Option<NonZeroUsize>,
    /// Refuse sources longer than this before converting anything.
    pub max_duration: Duration,
    /// Refuse sources with more pixels per frame than this before converting anything.
    pub max_pixels: u64,
}

impl TranscodeOptions {
    /// No timeout, all cores, sources up to 4 hours and 8K (7680×4320).
    pub fn new(height: Height) -> Self {
        Self {
            height,
            timeout: None,
            threads: None,
            max_duration: Duration::from_secs(4 * 3600),
            max_pixels: 7680 * 4320,
        }
    }
}

/// The files a transcode wrote.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Transcoded {
    /// `out_dir/video.mp4`: H.264 (yuv420p) and AAC if the source had audio, moov first.
    pub video: PathBuf,
    /// `out_dir/poster.jpg`: a frame from 1 s in (the middle of shorter videos), same size.
    pub poster: PathBuf,
    /// The probed output: its real duration, dimensions and codecs.
    pub media: MediaInfo,
}

/// Converts `input` into `out_dir/video.mp4` and `out_dir/poster.jpg` (creating
/// `out_dir`, overwriting those two files).
///
/// `progress` gets increasing fractions in `0.0..=1.0`, the last one 1.0 on success.
/// Tripping `cancel` or running past `opts.timeout` kills ffmpeg's whole process group
/// and returns [`VideoError::Cancelled`] or [`VideoError::TimedOut`]; dropping the
/// future kills the group too. On error the two files are removed (not when dropped).
pub async fn transcode(
    tools: &Tools,
    input: &Path,
    out_dir: &Path,
    opts: &TranscodeOptions,
    progress: &mut (dyn FnMut(f64) + Send),
    cancel: &CancellationToken,
) -> Result<Transcoded, VideoError> {
    let stop = Stop {
        cancel,
        deadline: opts.timeout.map(|t| (Instant::now() + t, t)),
    };
    let video = out_dir.join(VIDEO_FILE);
    let poster = out_dir.join(POSTER_FILE);
    let result = convert(tools, input, &video, &poster, opts, progress, stop).await;
    if result.is_err() {
        // Half-written files must not pass for results; there may be none yet.
        let _ = tokio::fs::remove_file(&video).await;
        let _ = tokio::fs::remove_file(&poster).await;
    }
    result
}

async fn convert(
    tools: &Tools,
    input: &Path,
    video: &Path,
    poster: &Path,
    opts: &TranscodeOptions,
    progress: &mut (dyn FnMut(f64) + Send),
    stop: Stop<'_>,
) -> Result<Transcoded, VideoError> {
    let source = probe_until(tools, input, stop).await?;
    check_limits(&source, opts)?;
    if let Some(dir) = video.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(VideoError::io("cannot create the output directory"))?;
    }

    let (in_url, out_url) = (file_url(input), file_url(video));
    let args = convert_args(&source, opts, &in_url, &out_url);
    let mut reporter = Progress::new(source.duration_secs, progress);
    let mut lines = LineSplitter::default();
    let finished = process::run(
        "ffmpeg",
        &tools.ffmpeg,
        &args,
        |chunk| lines.feed(chunk, &mut |line| reporter.line(line)),
        stop,
    )
    .await?;
    process::check("ffmpeg", &finished, false, &[&in_url, &out_url])?;
    let media = probe_until(tools, video, stop).await?;

    let poster_url = file_url(poster);
    let finished = process::run(
        "ffmpeg",
        &tools.ffmpeg,
        &poster_args(media.duration_secs, &out_url, &poster_url),
        |_| {},
        stop,
    )
    .await?;
    process::check("ffmpeg", &finished, false, &[&out_url, &poster_url])?;
    if !tokio::fs::try_exists(poster).await.unwrap_or(false) {
        return Err(VideoError::Failed(
            "the video has no frame to make a poster from".into(),
        ));
    }
    progress(1.0);
    Ok(Transcoded {
        video: video.to_owned(),
        poster: poster.to_owned(),
        media,
    })
}

/// Refuses oversized sources from their headers, before ffmpeg decodes a frame.
fn check_limits(source: &MediaInfo, opts: &TranscodeOptions) -> Result<(), VideoError> {
    let pixels = u64::from(source.width) * u64::from(source.height);
    if pixels > opts.max_pixels {
        return Err(VideoError::TooLarge(format!(
            "{}x{} pixels is more than the limit of {} pixels per frame",
            source.width, source.height, opts.max_pixels
        )));
    }
    match source.duration_secs {
        Some(secs) if secs > opts.max_duration.as_secs_f64() => Err(VideoError::TooLarge(format!(
            "{secs:.0} s is longer than the limit of {} s",
            opts.max_duration.as_secs()
        ))),
        _ => Ok(()),
    }
}

/// The output height: the wanted one, or the source's if smaller (never upscaling),
/// rounded down to even because yuv420p halves the chroma plane.
fn output_height(source: u32, wanted: Height) -> u32 {
    (source.min(wanted.pixels()) & !1).max(2)
}

fn convert_args(
    source: &MediaInfo,
    opts: &TranscodeOptions,
    input: &str,
    output: &str,
) -> Vec<OsString> {
    let height = output_height(source.height, opts.height);
    let mut args: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        "-y",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        DEMUXERS,
        "-i",
        input,
        "-map",
    ]
    .map(String::from)
    .into();
    args.push(format!("0:{}", source.video_index));
    match source.audio_index {
        Some(audio) => args.extend([
            "-map".into(),
            format!("0:{audio}"),
            "-c:a".into(),
            "aac".into(),
            "-b:a".into(),
            "128k".into(),
        ]),
        None => args.push("-an".into()),
    }
    // Metadata is dropped: phone videos carry the place they were filmed.
    args.extend(
        [
            "-sn",
            "-dn",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-vf",
            // -2: the width that keeps the aspect ratio, rounded to even.
            &format!("scale=-2:{height},format=yuv420p"),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
        ]
        .map(String::from),
    );
    if let Some(threads) = opts.threads {
        args.extend(["-threads".into(), threads.to_string()]);
    }
    // faststart puts the index first, so browsers start playing before the download ends.
    args.extend(["-movflags", "+faststart", "-f", "mp4", output].map(String::from));
    args.into_iter().map(OsString::from).collect()
}

/// When to take the poster: 1 s in skips the black first frame many videos open with.
fn poster_at(duration_secs: Option<f64>) -> f64 {
    match duration_secs {
        Some(d) if d >= 2.0 => 1.0,
        Some(d) => d / 2.0,
        None => 0.0,
    }
}

fn poster_args(duration_secs: Option<f64>, video: &str, poster: &str) -> Vec<OsString> {
    [
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-ss",
        &format!("{:.3}", poster_at(duration_secs)),
        "-protocol_whitelist",
        "file",
        "-i",
        video,
        "-frames:v",
        "1",
        "-q:v",
        "3",
        // One image, not a numbered sequence.
        "-f",
        "image2",
        "-update",
        "1",
        poster,
    ]
    .into_iter()
    .map(OsString::from)
    .collect()
}

/// Turns ffmpeg's `-progress` lines into increasing fractions of the source duration.
struct Progress<'a> {
    total_us: Option<f64>,
    last: f64,
    report: &'a mut (dyn FnMut(f64) + Send),
}

impl<'a> Progress<'a> {
    fn new(duration_secs: Option<f64>, report: &'a mut (dyn FnMut(f64) + Send)) -> Self {
        Self {
            total_us: duration_secs.map(|s| s * 1e6),
            last: 0.0,
            report,
        }
    }

    fn line(&mut self, line: &str) {
        // Without a duration there is nothing to measure against; 1.0 still comes at the end.
        let Some(total) = self.total_us else { return };
        // out_time_ms is in microseconds too (an old ffmpeg mistake kept for
        // compatibility), so either key serves when the other is missing.
        let Some(value) = line
            .strip_prefix("out_time_us=")
            .or_else(|| line.strip_prefix("out_time_ms="))
        else {
            return;
        };
        // "N/A" and negative times appear before the first frame is out.
        let Ok(us) = value.trim().parse::<i64>() else {
            return;
        };
        let fraction = (us as f64 / total).clamp(0.0, BEFORE_POSTER);
        if fraction > self.last {
            self.last = fraction;
            (self.report)(fraction);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_are_validated() {
        assert_eq!(Height::try_from(720), Ok(Height::P720));
        assert_eq!(
            Height::try_from(480).unwrap_err().to_string(),
            "height 480 is not offered; choose 360, 720 or 1080"
        );
    }

    #[test]
    fn never_upscales_and_keeps_heights_even() {
        assert_eq!(output_height(480, Height::P720), 480);
        assert_eq!(output_height(2160, Height::P1080), 1080);
        assert_eq!(output_height(481, Height::P720), 480);
        assert_eq!(output_height(1, Height::P360), 2);
    }

    #[test]
    fn poster_comes_from_one_second_or_the_middle() {
        assert_eq!(poster_at(Some(30.0)), 1.0);
        assert_eq!(poster_at(Some(1.0)), 0.5);
        assert_eq!(poster_at(None), 0.0);
    }

    #[test]
    fn progress_is_increasing_and_stops_short_of_one() {
        let mut seen = Vec::new();
        let mut report = |f: f64| seen.push(f);
        let mut p = Progress::new(Some(4.0), &mut report);
        for line in [
            "out_time_us=N/A",
            "out_time_us=-23000",
            "frame=10",
            "out_time_us=1000000",
            "out_time_ms=1000000",
            "out_time_us=500000",
            "out_time_us=2000000",
            "out_time_us=9000000",
        ] {
            p.line(line);
        }
        assert_eq!(seen, [0.25, 0.5, BEFORE_POSTER]);
    }
}

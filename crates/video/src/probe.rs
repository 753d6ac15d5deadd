//! Reading a video's duration, dimensions and codecs with ffprobe.

use crate::{
    error::VideoError,
    process::{self, Stop},
    tools::Tools,
};
use serde::Deserialize;
use std::{ffi::OsString, path::Path};
use tokio_util::sync::CancellationToken;

/// The input formats (demuxers) ffprobe and ffmpeg may open. Playlists (`hls`,
/// `concat`) are left out because they make ffmpeg read other files named inside an
/// upload; images and audio-only formats because they are not videos.
pub(crate) const DEMUXERS: &str =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg,gif";

/// ffprobe's JSON output is a few kilobytes; a bound keeps a hostile file from making it more.
const MAX_PROBE_OUTPUT: usize = 1 << 20;

/// What ffprobe found in a video.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MediaInfo {
    /// Length in seconds, from the container or else the video stream; `None` when the
    /// file does not say.
    pub duration_secs: Option<f64>,
    /// Width as displayed, i.e. after the rotation phones record.
    pub width: u32,
    /// Height as displayed, i.e. after the rotation phones record.
    pub height: u32,
    /// The video codec, in ffprobe's names (`h264`, `hevc`, `vp9`, …).
    pub video_codec: String,
    /// The audio codec, if there is an audio stream.
    pub audio_codec: Option<String>,
    /// The container, in ffprobe's names (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, …).
    pub container: String,
    /// ffprobe's index of the video stream, which `transcode` maps.
    pub(crate) video_index: u32,
    /// ffprobe's index of the audio stream, if any.
    pub(crate) audio_index: Option<u32>,
}

/// Reads `input` with ffprobe. Fails with [`VideoError::Unreadable`],
/// [`VideoError::UnsupportedFormat`] or [`VideoError::NoVideo`] for files that are not
/// videos; cannot be cancelled (ffprobe reads only the headers), use [`crate::transcode`]'s
/// timeout to bound a whole transcode.
pub async fn probe(tools: &Tools, input: &Path) -> Result<MediaInfo, VideoError> {
    probe_until(
        tools,
        input,
        Stop {
            cancel: &CancellationToken::new(),
            deadline: None,
        },
    )
    .await
}

pub(crate) async fn probe_until(
    tools: &Tools,
    input: &Path,
    stop: Stop<'_>,
) -> Result<MediaInfo, VideoError> {
    let url = file_url(input);
    let args: Vec<OsString> = [
        "-hide_banner",
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        DEMUXERS,
        "-print_format",
        "json",
        "-show_entries",
        "format=format_name,duration:stream=index,codec_type,codec_name,width,height,duration\
         :stream_disposition=attached_pic:stream_side_data=rotation",
    ]
    .into_iter()
    .map(OsString::from)
    .chain([url.clone().into()])
    .collect();
    let mut json = Vec::new();
    let finished = process::run(
        "ffprobe",
        &tools.ffprobe,
        &args,
        |chunk| {
            let room = MAX_PROBE_OUTPUT.saturating_sub(json.len());
            json.extend_from_slice(&chunk[..chunk.len().min(room)]);
        },
        stop,
    )
    .await?;
    process::check("ffprobe", &finished, true, &[&url])?;
    let out: ProbeOutput = serde_json::from_slice(&json)
        .map_err(|e| VideoError::Unreadable(format!("ffprobe's report is not valid: {e}")))?;
    out.into_info()
}

/// The input as an explicit `file:` URL, so a name like `http:x` or `a|b` is not taken
/// for a protocol.
pub(crate) fn file_url(path: &Path) -> String {
    format!("file:{}", path.display())
}

#[derive(Deserialize)]
struct ProbeOutput {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    index: u32,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    duration: Option<String>,
    #[serde(default)]
    disposition: Disposition,
    #[serde(default)]
    side_data_list: Vec<SideData>,
}

#[derive(Deserialize, Default)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct SideData {
    rotation: Option<f64>,
}

#[derive(Deserialize)]
struct Format {
    format_name: Option<String>,
    duration: Option<String>,
}

impl ProbeOutput {
    fn into_info(self) -> Result<MediaInfo, VideoError> {
        let kind = |s: &Stream, t: &str| s.codec_type.as_deref() == Some(t);
        // Cover art is stored as a one-frame "video" stream marked attached_pic.
        let video = self
            .streams
            .iter()
            .find(|s| kind(s, "video") && s.disposition.attached_pic == 0)
            .ok_or(VideoError::NoVideo)?;
        let audio = self.streams.iter().find(|s| kind(s, "audio"));
        let (Some(w), Some(h)) = (video.width, video.height) else {
            return Err(VideoError::Unreadable(
                "the video stream has no dimensions".into(),
            ));
        };
        let quarter_turn = video
            .side_data_list
            .iter()
            .filter_map(|d| d.rotation)
            .any(|r| (r.abs() / 90.0).round() % 2.0 == 1.0);
        let (width, height) = if quarter_turn { (h, w) } else { (w, h) };
        let seconds = |d: &Option<String>| {
            d.as_deref()
                .and_then(|d| d.parse::<f64>().ok())
                .filter(|d| d.is_finite() && *d > 0.0)
        };
        let format = self.format.as_ref();
        Ok(MediaInfo {
            duration_secs: format
                .and_then(|f| seconds(&f.duration))
                .or_else(|| seconds(&video.duration)),
            width,
            height,
            video_codec: video.codec_name.clone().unwrap_or_default(),
            audio_codec: audio.map(|a| a.codec_name.clone().unwrap_or_default()),
            container: format
                .and_then(|f| f.format_name.clone())
                .unwrap_or_default(),
            video_index: video.index,
            audio_index: audio.map(|a| a.index),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(json: &str) -> Result<MediaInfo, VideoError> {
        serde_json::from_str::<ProbeOutput>(json)
            .unwrap()
            .into_info()
    }

    #[test]
    fn rotated_phone_videos_report_displayed_dimensions() {
        let i = info(
            r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":1920,
            "height":1080,"side_data_list":[{"rotation":-90}]}],
            "format":{"format_name":"mov","duration":"2.5"}}"#,
        )
        .unwrap();
        assert_eq!(
            (i.width, i.height, i.duration_secs),
            (1080, 1920, Some(2.5))
        );
        assert_eq!(i.audio_codec, None);
    }

    #[test]
    fn cover_art_is_not_a_video() {
        let e = info(
            r#"{"streams":[{"index":0,"codec_type":"audio","codec_name":"mp3"},
            {"index":1,"codec_type":"video","codec_name":"mjpeg","width":500,"height":500,
            "disposition":{"attached_pic":1}}],"format":{"format_name":"mov"}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, VideoError::NoVideo), "{e:?}");
    }

    #[test]
    fn missing_duration_falls_back_to_the_stream_then_none() {
        let i = info(
            r#"{"streams":[{"index":3,"codec_type":"video","codec_name":"vp9","width":640,
            "height":360,"duration":"4.0"},{"index":4,"codec_type":"audio","codec_name":"opus"}],
            "format":{"format_name":"matroska,webm","duration":"N/A"}}"#,
        )
        .unwrap();
        assert_eq!(i.duration_secs, Some(4.0));
        assert_eq!((i.video_index, i.audio_index), (3, Some(4)));
        let i = info(
            r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"gif","width":4,
            "height":4}],"format":{}}"#,
        )
        .unwrap();
        assert_eq!(i.duration_secs, None);
    }
}

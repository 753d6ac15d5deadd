//! Successful transcodes: codecs, sizes, poster, progress.

use crate::support::{ffmpeg, sample, stream_of, tools};
use forklift_video::{Height, TranscodeOptions, Transcoded, probe, transcode};
use std::path::Path;
use tokio_util::sync::CancellationToken;

async fn run(input: &Path, out_dir: &Path, height: Height) -> (Transcoded, Vec<f64>) {
    let mut seen = Vec::new();
    let done = transcode(
        &tools(),
        input,
        out_dir,
        &TranscodeOptions::new(height),
        &mut |f| seen.push(f),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    (done, seen)
}

#[tokio::test]
async fn converts_to_360p_h264_aac_with_a_poster() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), "in.mp4", "640x480", 3, true);
    let out = dir.path().join("out");
    let (done, _) = run(&input, &out, Height::P360).await;

    let media = probe(&tools(), &done.video).await.unwrap();
    assert_eq!(media, done.media);
    assert_eq!(media.video_codec, "h264");
    assert_eq!(media.audio_codec.as_deref(), Some("aac"));
    assert_eq!((media.width, media.height), (480, 360));
    let secs = media.duration_secs.unwrap();
    assert!((secs - 3.0).abs() <= 0.2, "duration {secs}");
    // faststart: the index (moov) comes before the media data (mdat).
    let bytes = std::fs::read(&done.video).unwrap();
    let at = |tag: &[u8]| bytes.windows(4).position(|w| w == tag).unwrap();
    assert!(at(b"moov") < at(b"mdat"));

    assert_eq!(done.poster, out.join("poster.jpg"));
    let poster = std::fs::read(&done.poster).unwrap();
    assert_eq!(poster[..3], [0xFF, 0xD8, 0xFF], "not a JPEG");
    assert_eq!(stream_of(&done.poster), "mjpeg,480,360");
}

#[tokio::test]
async fn never_upscales() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), "in.mp4", "640x480", 1, true);
    let (done, _) = run(&input, &dir.path().join("out"), Height::P720).await;
    assert_eq!((done.media.width, done.media.height), (640, 480));
    assert_eq!(stream_of(&done.poster), "mjpeg,640,480");
}

#[tokio::test]
async fn converts_a_source_without_audio() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), "in.mp4", "320x240", 2, false);
    assert_eq!(probe(&tools(), &input).await.unwrap().audio_codec, None);
    let (done, _) = run(&input, &dir.path().join("out"), Height::P360).await;
    assert_eq!(done.media.video_codec, "h264");
    assert_eq!(done.media.audio_codec, None);
    assert_eq!(done.media.height, 240);
}

#[tokio::test]
async fn rotated_sources_are_scaled_as_displayed() {
    let dir = tempfile::tempdir().unwrap();
    let flat = sample(dir.path(), "flat.mp4", "640x480", 1, false);
    let input = dir.path().join("in.mp4");
    ffmpeg(&[
        "-i",
        flat.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        input.to_str().unwrap(),
    ]);
    let source = probe(&tools(), &input).await.unwrap();
    assert_eq!((source.width, source.height), (480, 640));
    let (done, _) = run(&input, &dir.path().join("out"), Height::P360).await;
    assert_eq!((done.media.width, done.media.height), (270, 360));
}

#[tokio::test]
async fn progress_increases_and_ends_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), "in.mp4", "640x480", 3, true);
    let (_, seen) = run(&input, &dir.path().join("out"), Height::P360).await;
    assert!(seen.len() >= 2, "no report before the end: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(seen[0] > 0.0, "{seen:?}");
    assert_eq!(seen.last(), Some(&1.0));
}

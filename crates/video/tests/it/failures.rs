//! Inputs that are not videos fail with a short reason the user can act on.

use crate::support::{ffmpeg, sample, tools};
use forklift_video::{Height, TranscodeOptions, VideoError, probe, transcode};
use std::{path::Path, time::Duration};
use tokio_util::sync::CancellationToken;

async fn transcode_err(input: &Path, opts: &TranscodeOptions) -> VideoError {
    let out = input.with_file_name("out");
    let err = transcode(
        &tools(),
        input,
        &out,
        opts,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        !out.join("video.mp4").exists(),
        "a failed transcode left its output"
    );
    err
}

/// A message fit for a user: short, no server paths.
fn assert_clear(err: &VideoError, dir: &Path) {
    let msg = err.to_string();
    assert!(msg.len() < 200, "too long: {msg}");
    assert!(
        !msg.contains(dir.to_str().unwrap()),
        "names a server path: {msg}"
    );
    assert!(!msg.contains('\n'), "more than a line: {msg}");
}

#[tokio::test]
async fn a_truncated_video_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let whole = sample(dir.path(), "whole.mp4", "640x480", 2, true);
    let input = dir.path().join("in.mp4");
    // ffmpeg writes the index (moov) last, so the head of the file lacks it.
    let bytes = std::fs::read(whole).unwrap();
    std::fs::write(&input, &bytes[..bytes.len() / 2]).unwrap();

    let err = transcode_err(&input, &TranscodeOptions::new(Height::P360)).await;
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the file is not a video ffmpeg can read: moov atom not found; \
         Invalid data found when processing input"
    );
    assert_clear(&err, dir.path());
}

#[tokio::test]
async fn text_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // ffmpeg takes a .txt file for ANSI art, a format of its own.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "shopping list: milk, eggs\n".repeat(50)).unwrap();
    let err = transcode_err(&notes, &TranscodeOptions::new(Height::P360)).await;
    assert_eq!(
        err.to_string(),
        "the file is text, not a video this server accepts"
    );
    assert!(err.is_permanent());

    let upload = dir.path().join("upload");
    std::fs::write(&upload, "hello, not a video\n").unwrap();
    let err = probe(&tools(), &upload).await.unwrap_err();
    assert!(matches!(err, VideoError::Unreadable(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the file is not a video ffmpeg can read: Invalid data found when processing input"
    );
    assert_clear(&err, dir.path());
}

#[tokio::test]
async fn playlists_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = sample(dir.path(), "in.mp4", "320x240", 1, false);
    // A playlist makes ffmpeg open the files it names: any file on the server.
    let playlist = dir.path().join("list.m3u8");
    ffmpeg(&[
        "-i",
        source.to_str().unwrap(),
        "-c",
        "copy",
        "-f",
        "hls",
        playlist.to_str().unwrap(),
    ]);
    let err = probe(&tools(), &playlist).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the file is a playlist, not a video this server accepts"
    );
    assert!(err.is_permanent());
}

#[tokio::test]
async fn audio_only_files_have_no_video() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tone.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-c:a",
        "aac",
        input.to_str().unwrap(),
    ]);
    let err = transcode_err(&input, &TranscodeOptions::new(Height::P360)).await;
    assert!(matches!(err, VideoError::NoVideo), "{err:?}");
}

#[tokio::test]
async fn sources_over_the_limits_are_refused_before_converting() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample(dir.path(), "in.mp4", "640x480", 3, false);
    let mut opts = TranscodeOptions::new(Height::P360);
    opts.max_duration = Duration::from_secs(2);
    let err = transcode_err(&input, &opts).await;
    assert_eq!(
        err.to_string(),
        "the video is too large: 3 s is longer than the limit of 2 s"
    );

    let mut opts = TranscodeOptions::new(Height::P360);
    opts.max_pixels = 640 * 480 - 1;
    let err = transcode_err(&input, &opts).await;
    assert!(matches!(err, VideoError::TooLarge(_)), "{err:?}");
}

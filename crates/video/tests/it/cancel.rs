//! Cancellation, timeouts and dropped futures leave no ffmpeg behind.

use crate::support::{ffmpeg_pid, group_members, long_sample, pgid, tools, wait_until};
use forklift_video::{Height, TranscodeOptions, VideoError, transcode};
use std::{path::Path, time::Duration};
use tokio_util::sync::CancellationToken;

/// The running ffmpeg writing into `out_dir`, checked to lead its own process group.
fn running_ffmpeg(out_dir: &Path) -> u32 {
    let pid = ffmpeg_pid(out_dir.to_str().unwrap()).expect("ffmpeg runs during progress reports");
    assert_eq!(
        pgid(pid),
        Some(pid),
        "ffmpeg does not lead its own process group"
    );
    pid
}

#[tokio::test]
async fn cancelling_kills_and_reaps_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let input = long_sample(dir.path());
    let out = dir.path().join("out");
    let cancel = CancellationToken::new();
    let mut pid = None;
    let result = transcode(
        &tools(),
        &input,
        &out,
        &TranscodeOptions::new(Height::P360),
        &mut |_| {
            if pid.is_none() {
                pid = Some(running_ffmpeg(&out));
                cancel.cancel();
            }
        },
        &cancel,
    )
    .await;
    assert!(matches!(result, Err(VideoError::Cancelled)), "{result:?}");
    let pid = pid.expect("no progress was reported");
    // Reaped before transcode returned: not even a zombie is left.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "ffmpeg {pid} is still there"
    );
    assert_eq!(group_members(pid), Vec::<u32>::new());
    assert!(!out.join("video.mp4").exists());
}

#[tokio::test]
async fn the_timeout_kills_and_reaps_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let input = long_sample(dir.path());
    let out = dir.path().join("out");
    let mut opts = TranscodeOptions::new(Height::P360);
    opts.timeout = Some(Duration::from_secs(3));
    let mut pid = None;
    let result = transcode(
        &tools(),
        &input,
        &out,
        &opts,
        &mut |_| {
            pid.get_or_insert_with(|| running_ffmpeg(&out));
        },
        &CancellationToken::new(),
    )
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, VideoError::TimedOut(_)), "{err:?}");
    assert!(err.is_retryable());
    let pid = pid.expect("no progress was reported before the timeout");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "ffmpeg {pid} is still there"
    );
    assert_eq!(group_members(pid), Vec::<u32>::new());
}

#[tokio::test]
async fn dropping_the_future_kills_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let input = long_sample(dir.path());
    let out = dir.path().join("out");
    let (started, mut on_start) = tokio::sync::mpsc::unbounded_channel();
    let mut report = |_| {
        let _ = started.send(());
    };
    let tools = tools();
    let opts = TranscodeOptions::new(Height::P360);
    let cancel = CancellationToken::new();
    let work = transcode(&tools, &input, &out, &opts, &mut report, &cancel);
    tokio::select! {
        result = work => panic!("finished before it could be dropped: {result:?}"),
        _ = on_start.recv() => {}
    }
    // `work` is dropped now; the progress report above proved ffmpeg was running.
    let pid = ffmpeg_pid(out.to_str().unwrap());
    wait_until("the dropped ffmpeg is gone", || {
        pid.is_none_or(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    })
    .await;
    assert!(ffmpeg_pid(out.to_str().unwrap()).is_none());
}

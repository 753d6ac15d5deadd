//! Test videos made with ffmpeg's generators, and process-table checks through /proc.

use forklift_video::Tools;
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};
use tokio::time::Instant;

pub fn tools() -> Tools {
    Tools::detect().expect("these tests need ffmpeg and ffprobe with libx264 on PATH")
}

/// Runs ffmpeg synchronously with `args`, panicking with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new(tools().ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `secs`-second test pattern of `size` (e.g. "640x480") at 25 fps as H.264 in MP4,
/// with a sine tone as AAC when `audio`.
pub fn sample(dir: &Path, name: &str, size: &str, secs: u32, audio: bool) -> PathBuf {
    let path = dir.join(name);
    let video = format!("testsrc=size={size}:rate=25:duration={secs}");
    let tone = format!("sine=frequency=440:duration={secs}");
    let mut args = vec!["-f", "lavfi", "-i", &video];
    if audio {
        args.extend(["-f", "lavfi", "-i", &tone, "-c:a", "aac"]);
    }
    args.extend([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
    path
}

/// A two-minute 640x480 source, made by looping a cheap two-second clip without
/// re-encoding, so that converting it takes far longer than the tests wait.
pub fn long_sample(dir: &Path) -> PathBuf {
    let clip = dir.join("clip.mkv");
    let long = dir.join("long.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=640x480:rate=25:duration=2",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=2",
        "-c:v",
        "mpeg4",
        "-q:v",
        "10",
        "-c:a",
        "aac",
        clip.to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-stream_loop",
        "59",
        "-i",
        clip.to_str().unwrap(),
        "-c",
        "copy",
        long.to_str().unwrap(),
    ]);
    long
}

/// The codec, width and height of the first video stream, straight from ffprobe
/// (so that images, which `probe` refuses, can be checked too).
pub fn stream_of(path: &Path) -> String {
    let out = Command::new(tools().ffprobe)
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name,width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The pid of a live ffmpeg whose command line mentions `marker`.
pub fn ffmpeg_pid(marker: &str) -> Option<u32> {
    pids().find(|&pid| {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let mut args = cmdline.split(|&b| b == 0).map(String::from_utf8_lossy);
        args.next().is_some_and(|a| a.ends_with("ffmpeg")) && args.any(|a| a.contains(marker))
    })
}

/// The process group of `pid`, from field 5 of /proc/<pid>/stat.
pub fn pgid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may contain spaces; the fields follow the last ')'.
    let fields = &stat[stat.rfind(')')? + 2..];
    fields.split(' ').nth(2)?.parse().ok()
}

/// Every process (zombies included) in process group `group`.
pub fn group_members(group: u32) -> Vec<u32> {
    pids().filter(|&pid| pgid(pid) == Some(group)).collect()
}

fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

/// Waits until `done` holds, failing after ten seconds. For states no event announces,
/// like the kernel finishing off a process another owner reaps.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

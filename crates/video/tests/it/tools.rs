//! Finding the tools, and the reasons given when they are missing or unfit.

use crate::support::tools;
use forklift_video::Tools;
use std::{os::unix::fs::symlink, path::PathBuf};

#[test]
fn finds_both_tools_in_the_given_directories() {
    let dir = tempfile::tempdir().unwrap();
    let real = tools();
    symlink(&real.ffmpeg, dir.path().join("ffmpeg")).unwrap();
    symlink(&real.ffprobe, dir.path().join("ffprobe")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let search = std::env::join_paths([empty.path(), dir.path()]).unwrap();
    let found = Tools::detect_in(&search).unwrap();
    assert_eq!(found.ffmpeg, dir.path().join("ffmpeg"));
    assert_eq!(found.ffprobe, dir.path().join("ffprobe"));
}

#[test]
fn a_missing_ffmpeg_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    symlink(tools().ffprobe, dir.path().join("ffprobe")).unwrap();
    let err = Tools::detect_in(dir.path().as_os_str()).unwrap_err();
    assert_eq!(err.reason(), "ffmpeg is not installed on this server");
    let err = Tools::detect_in("".as_ref()).unwrap_err();
    assert_eq!(err.to_string(), "ffmpeg is not installed on this server");
}

#[test]
fn a_tool_that_does_not_run_is_reported() {
    let err = Tools::at(PathBuf::from("/bin/false"), tools().ffprobe).unwrap_err();
    assert_eq!(
        err.reason(),
        "ffmpeg on this server does not run (exit status: 1)"
    );
}

#[test]
fn an_ffmpeg_without_libx264_is_refused() {
    // echo runs and succeeds, but lists no encoders.
    let err = Tools::at(PathBuf::from("/bin/echo"), tools().ffprobe).unwrap_err();
    assert_eq!(
        err.reason(),
        "ffmpeg on this server was built without the libx264 encoder"
    );
}

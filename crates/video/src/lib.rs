#![doc = include_str!("../README.md")]

mod error;
mod probe;
mod process;
mod tools;
mod transcode;

pub use error::VideoError;
pub use probe::{MediaInfo, probe};
pub use tools::{FFMPEG_ENV, FFPROBE_ENV, Tools, Unavailable};
pub use transcode::{
    Height, POSTER_FILE, TranscodeOptions, Transcoded, UnsupportedHeight, VIDEO_FILE, transcode,
};

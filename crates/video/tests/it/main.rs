//! Integration tests against the real ffmpeg and ffprobe, on videos they generate.

mod cancel;
mod failures;
mod support;
mod tools;
mod transcode;

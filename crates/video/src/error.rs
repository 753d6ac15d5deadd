//! What can go wrong probing or transcoding, and whether trying again can help.

use std::time::Duration;

/// A failed probe or transcode. Messages are short and safe to show to the user who
/// uploaded the file: they never contain server paths or whole stderr dumps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
    /// The input is corrupt, truncated or not media at all (ffprobe's or ffmpeg's reason).
    #[error("the file is not a video ffmpeg can read: {0}")]
    Unreadable(String),
    /// The input is in a format this library refuses to open (playlists, images, audio,
    /// text); holds ffmpeg's name of the format.
    #[error("the file is {}, not a video this server accepts", describe(.0))]
    UnsupportedFormat(String),
    /// The input has no video stream (cover art does not count).
    #[error("the file has no video stream")]
    NoVideo,
    /// The input is longer or larger than the limits in the options.
    #[error("the video is too large: {0}")]
    TooLarge(String),
    /// ffmpeg read the input but could not convert it.
    #[error("ffmpeg could not convert the video: {0}")]
    Failed(String),
    /// The server ran short of disk space or memory while converting.
    #[error("the server ran out of resources: {0}")]
    Resources(String),
    /// A tool was killed by a signal this library did not send (the OOM killer, an operator).
    #[error("{tool} was killed by signal {signal}")]
    Killed {
        /// `ffmpeg` or `ffprobe`.
        tool: &'static str,
        /// The signal number.
        signal: i32,
    },
    /// Starting a tool, or reading or writing local files, failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, without paths.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The cancellation token was tripped; the tool's process group was killed.
    #[error("cancelled")]
    Cancelled,
    /// The timeout in the options ran out; the tool's process group was killed.
    #[error("the conversion took longer than the limit of {} s", .0.as_secs())]
    TimedOut(Duration),
}

impl VideoError {
    /// A passing problem: the same input may succeed on another attempt. This includes
    /// [`VideoError::TimedOut`], since a busy machine may be the cause.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Resources(_) | Self::Killed { .. } | Self::Io { .. } | Self::TimedOut(_)
        )
    }

    /// The input itself is the problem: retrying cannot help, and the message tells the
    /// user what is wrong with their file. Neither this nor [`Self::is_retryable`] holds
    /// for [`VideoError::Cancelled`].
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Unreadable(_)
                | Self::UnsupportedFormat(_)
                | Self::NoVideo
                | Self::TooLarge(_)
                | Self::Failed(_)
        )
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// ffmpeg's format names, in words a user knows.
fn describe(format: &str) -> String {
    match format {
        "tty" => "text".into(),
        "hls" | "concat" | "dash" => "a playlist".into(),
        "mp3" | "wav" | "flac" | "aac" | "aiff" | "w64" | "ape" | "wv" => "audio".into(),
        image if image.starts_with("image2") || image.ends_with("_pipe") => "an image".into(),
        other => format!("in the {other} format"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_retryable_permanent_or_cancelled() {
        let errors = [
            VideoError::Unreadable("x".into()),
            VideoError::UnsupportedFormat("hls".into()),
            VideoError::NoVideo,
            VideoError::TooLarge("x".into()),
            VideoError::Failed("x".into()),
            VideoError::Resources("x".into()),
            VideoError::Killed {
                tool: "ffmpeg",
                signal: 9,
            },
            VideoError::io("reading")(std::io::ErrorKind::Other.into()),
            VideoError::TimedOut(Duration::from_secs(5)),
        ];
        for e in &errors {
            assert!(e.is_retryable() != e.is_permanent(), "{e:?}");
        }
        assert_eq!(
            VideoError::UnsupportedFormat("png_pipe".into()).to_string(),
            "the file is an image, not a video this server accepts"
        );
        let c = VideoError::Cancelled;
        assert!(!c.is_retryable() && !c.is_permanent());
        assert_eq!(
            VideoError::TimedOut(Duration::from_millis(90_500)).to_string(),
            "the conversion took longer than the limit of 90 s"
        );
    }
}

//! Finding ffmpeg and ffprobe and checking, once at start-up, that they can do the job.

use std::{
    env,
    ffi::OsStr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Environment variable naming the ffmpeg binary, instead of searching `PATH`.
pub const FFMPEG_ENV: &str = "FORKLIFT_FFMPEG";
/// Environment variable naming the ffprobe binary, instead of searching `PATH`.
pub const FFPROBE_ENV: &str = "FORKLIFT_FFPROBE";

/// The two programs this crate runs, found and checked by [`Tools::detect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// The ffprobe binary.
    pub ffprobe: PathBuf,
}

/// Video processing cannot work on this server; the reason is fit to show users.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    reason: String,
}

impl Unavailable {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// Why, e.g. "ffmpeg is not installed on this server".
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Tools {
    /// Finds the tools the way a server should: the paths in [`FFMPEG_ENV`] and
    /// [`FFPROBE_ENV`] when set, otherwise a search of `PATH`; then checks them as
    /// [`Tools::at`] does. Runs both tools briefly, so call it once at start-up.
    pub fn detect() -> Result<Self, Unavailable> {
        let var = |name| {
            env::var_os(name)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        };
        Self::configured(var(FFMPEG_ENV), var(FFPROBE_ENV))
    }

    /// The tools as configured: each path given is used; a missing ffprobe is looked
    /// for beside a given ffmpeg, and anything else on `PATH`. Then checks them as
    /// [`Tools::at`] does.
    pub fn configured(
        ffmpeg: Option<PathBuf>,
        ffprobe: Option<PathBuf>,
    ) -> Result<Self, Unavailable> {
        let search = env::var_os("PATH").unwrap_or_default();
        let ffprobe = match (ffprobe, &ffmpeg) {
            (Some(p), _) => p,
            (None, Some(ffmpeg)) => ffmpeg.with_file_name("ffprobe"),
            (None, None) => find_in(&search, "ffprobe")?,
        };
        let ffmpeg = match ffmpeg {
            Some(p) => p,
            None => find_in(&search, "ffmpeg")?,
        };
        Self::at(ffmpeg, ffprobe)
    }

    /// Searches only `search_path` (a `PATH`-style list of directories) and ignores the
    /// environment, then checks the tools as [`Tools::at`] does.
    pub fn detect_in(search_path: &OsStr) -> Result<Self, Unavailable> {
        Self::at(
            find_in(search_path, "ffmpeg")?,
            find_in(search_path, "ffprobe")?,
        )
    }

    /// Uses these two binaries after checking that both run (`-version`) and that
    /// ffmpeg has the libx264 encoder, which Debian's package has but minimal builds lack.
    pub fn at(ffmpeg: PathBuf, ffprobe: PathBuf) -> Result<Self, Unavailable> {
        version(&ffprobe, "ffprobe")?;
        version(&ffmpeg, "ffmpeg")?;
        let encoders = output(&ffmpeg, "ffmpeg", &["-hide_banner", "-encoders"])?;
        // Lines read " V....D libx264  libx264 H.264 / AVC …".
        if !encoders
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("libx264"))
        {
            return Err(Unavailable::new(
                "ffmpeg on this server was built without the libx264 encoder",
            ));
        }
        Ok(Self { ffmpeg, ffprobe })
    }
}

fn find_in(search_path: &OsStr, name: &str) -> Result<PathBuf, Unavailable> {
    env::split_paths(search_path)
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
        .ok_or_else(|| Unavailable::new(format!("{name} is not installed on this server")))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn version(program: &Path, name: &str) -> Result<(), Unavailable> {
    output(program, name, &["-hide_banner", "-version"]).map(drop)
}

/// Runs a tool to completion and returns its stdout. The reason never names the path:
/// it may reach users, and the operator knows where the binary is.
fn output(program: &Path, name: &str, args: &[&str]) -> Result<String, Unavailable> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Unavailable::new(format!("{name} on this server cannot be started: {e}")))?;
    if !out.status.success() {
        return Err(Unavailable::new(format!(
            "{name} on this server does not run ({})",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

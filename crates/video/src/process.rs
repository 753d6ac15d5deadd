//! Running a tool in its own process group: bounded output capture, cancellation, timeout, and killing the whole group.

use crate::error::VideoError;
use rustix::process::{Pid, Signal, kill_process_group};
use std::{
    collections::VecDeque,
    ffi::OsString,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{ExitStatus, Stdio},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    process::{Child, Command},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// Longest line kept from a tool's output; the rest of a longer line is dropped.
const MAX_LINE: usize = 512;
/// How many stderr lines are kept for the error message.
const TAIL_LINES: usize = 8;
/// Longest error reason handed to the user.
const MAX_REASON: usize = 240;

/// When to give up on a tool: the caller's cancellation, and an optional deadline.
#[derive(Clone, Copy)]
pub(crate) struct Stop<'a> {
    pub(crate) cancel: &'a CancellationToken,
    /// The deadline and the timeout it came from (for the error message).
    pub(crate) deadline: Option<(Instant, Duration)>,
}

/// A tool that ran to the end by itself.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    /// Its last stderr lines, for [`condense`].
    pub(crate) tail: Tail,
}

/// Runs `program` with `args`, handing every chunk of its stdout to `on_stdout`.
///
/// The child leads its own process group. If `stop` trips, or this future is dropped,
/// the whole group is killed, so helpers a tool starts die with it; on `stop` the
/// leader is also reaped before this returns.
pub(crate) async fn run(
    tool: &'static str,
    program: &Path,
    args: &[OsString],
    mut on_stdout: impl FnMut(&[u8]) + Send,
    stop: Stop<'_>,
) -> Result<Finished, VideoError> {
    let mut group = Group::spawn(tool, program, args)?;
    let (Some(mut stdout), Some(stderr)) = (group.child.stdout.take(), group.child.stderr.take())
    else {
        unreachable!("both pipes are requested in Group::spawn");
    };
    let mut tail = Tail::default();
    let work = async {
        let out = async {
            let mut buf = [0u8; 8192];
            loop {
                match stdout.read(&mut buf).await? {
                    0 => return Ok(()),
                    n => on_stdout(&buf[..n]),
                }
            }
        };
        let err = read_lines(stderr, |line| tail.push(line));
        let (out, err, status) = tokio::join!(out, err, group.child.wait());
        out.and(err).and(status)
    };
    let deadline = async {
        match stop.deadline {
            Some((at, _)) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let stopped = tokio::select! {
        // Checked first so that a token tripped during a progress callback wins over
        // the tool happening to finish at the same moment.
        biased;
        () = stop.cancel.cancelled() => VideoError::Cancelled,
        () = deadline => VideoError::TimedOut(stop.deadline.map(|(_, d)| d).unwrap_or_default()),
        status = work => {
            let status = status.map_err(VideoError::io("reading the output of a tool"))?;
            return Ok(Finished { status, tail });
        }
    };
    group.kill_and_reap().await;
    Err(stopped)
}

/// A child leading its own process group; dropping it kills the group.
struct Group {
    child: Child,
}

impl Group {
    fn spawn(tool: &str, program: &Path, args: &[OsString]) -> Result<Self, VideoError> {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so one signal reaches every process it starts and none of ours.
            .process_group(0)
            // Lets tokio reap the leader in the background when this is dropped unawaited.
            .kill_on_drop(true)
            .spawn()
            .map_err(VideoError::io(format!("cannot start {tool}")))?;
        Ok(Self { child })
    }

    /// Sends SIGKILL to the whole group.
    fn kill(&mut self) {
        // Only while the leader is unreaped (tokio clears the id once it has reaped it):
        // until then its pid, which is the group id, cannot be reused, so the signal
        // cannot reach a stranger's processes.
        let Some(pid) = self.child.id() else { return };
        let group = i32::try_from(pid).ok().and_then(Pid::from_raw);
        if group.is_none_or(|g| kill_process_group(g, Signal::KILL).is_err()) {
            // Should the group be out of reach, at least the leader dies.
            let _ = self.child.start_kill();
        }
    }

    async fn kill_and_reap(&mut self) {
        self.kill();
        // After SIGKILL the wait cannot block for long; an error means it is already reaped.
        let _ = self.child.wait().await;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Feeds the lines of `reader` to `on_line`, each cut to [`MAX_LINE`] bytes, so a tool
/// writing without newlines cannot make this grow.
async fn read_lines(
    mut reader: impl AsyncRead + Unpin,
    mut on_line: impl FnMut(&str),
) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut lines = LineSplitter::default();
    loop {
        match reader.read(&mut buf).await? {
            0 => {
                lines.finish(&mut on_line);
                return Ok(());
            }
            n => lines.feed(&buf[..n], &mut on_line),
        }
    }
}

/// Splits bytes into lines at `\n` or `\r` (ffmpeg redraws status lines with `\r`),
/// keeping at most [`MAX_LINE`] bytes of each.
#[derive(Default)]
pub(crate) struct LineSplitter {
    line: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn feed(&mut self, bytes: &[u8], on_line: &mut impl FnMut(&str)) {
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                self.finish(on_line);
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
    }

    pub(crate) fn finish(&mut self, on_line: &mut impl FnMut(&str)) {
        if !self.line.is_empty() {
            on_line(&String::from_utf8_lossy(&self.line));
            self.line.clear();
        }
    }
}

/// The last [`TAIL_LINES`] non-blank lines a tool wrote to stderr.
#[derive(Default)]
pub(crate) struct Tail(VecDeque<String>);

impl Tail {
    fn push(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        if self.0.len() == TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line.to_owned());
    }
}

/// Turns a tool's exit into an error, unless it succeeded.
///
/// `unreadable` says whether a plain failure means the input could not be read (probing)
/// or that the conversion failed; `hide` lists the paths given to the tool, which are
/// cut out of the message because they are the server's business.
pub(crate) fn check(
    tool: &'static str,
    finished: &Finished,
    unreadable: bool,
    hide: &[&str],
) -> Result<(), VideoError> {
    if finished.status.success() {
        return Ok(());
    }
    if let Some(signal) = finished.status.signal() {
        return Err(VideoError::Killed { tool, signal });
    }
    let lines: Vec<String> = finished.tail.0.iter().map(|l| clean(l, hide)).collect();
    if let Some(line) = lines.iter().find(|l| l.contains("Format not on whitelist")) {
        let format = line.split_whitespace().next().unwrap_or("unknown");
        return Err(VideoError::UnsupportedFormat(format.to_owned()));
    }
    let reason = condense(&lines);
    // Disk or memory running short is the server's problem, not the file's.
    if ["No space left on device", "Cannot allocate memory"]
        .iter()
        .any(|m| reason.contains(m))
    {
        return Err(VideoError::Resources(reason));
    }
    Err(if unreadable {
        VideoError::Unreadable(reason)
    } else {
        VideoError::Failed(reason)
    })
}

/// Removes the `[demuxer @ 0x55…]` context prefix ffmpeg puts on log lines (keeping the
/// component name in front, which [`check`] reads) and the given paths.
fn clean(line: &str, hide: &[&str]) -> String {
    let mut line = line.to_owned();
    if let Some(rest) = line.strip_prefix('[')
        && let Some((context, msg)) = rest.split_once("] ")
    {
        // Only the whitelist message needs the component; elsewhere it is noise.
        line = if msg.contains("Format not on whitelist") {
            let component = context.split(" @ ").next().unwrap_or(context);
            format!("{component} {msg}")
        } else {
            msg.to_owned()
        };
    }
    for path in hide {
        line = line
            .replace(&format!("{path}: "), "")
            .replace(path, "the file");
    }
    line
}

/// The last two distinct lines, joined and cut to [`MAX_REASON`] characters: ffmpeg
/// usually gives the specific cause first and its general consequence last.
fn condense(lines: &[String]) -> String {
    let mut picked: Vec<&str> = Vec::new();
    for line in lines.iter().rev() {
        if picked.len() == 2 {
            break;
        }
        if !picked.contains(&line.as_str()) && line != "Conversion failed!" {
            picked.push(line);
        }
    }
    picked.reverse();
    let reason = if picked.is_empty() {
        "no reason given".to_owned()
    } else {
        picked.join("; ")
    };
    match reason.char_indices().nth(MAX_REASON) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[&[u8]]) -> Vec<String> {
        let mut split = LineSplitter::default();
        let mut out = Vec::new();
        for b in bytes {
            split.feed(b, &mut |l: &str| out.push(l.to_owned()));
        }
        split.finish(&mut |l: &str| out.push(l.to_owned()));
        out
    }

    #[test]
    fn lines_split_across_chunks_and_carriage_returns() {
        assert_eq!(
            lines(&[b"fra", b"me=1\rframe=2\n\nout_time_us=5", b"00"]),
            ["frame=1", "frame=2", "out_time_us=500"]
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let long = vec![b'x'; 10 * MAX_LINE];
        let got = lines(&[&long, b"\nnext"]);
        assert_eq!(got[0].len(), MAX_LINE);
        assert_eq!(got[1], "next");
    }

    #[test]
    fn tail_keeps_only_the_last_lines() {
        let mut tail = Tail::default();
        for i in 0..100 {
            tail.push(&format!("line {i}"));
            tail.push("   ");
        }
        assert_eq!(tail.0.len(), TAIL_LINES);
        assert_eq!(tail.0.back().map(String::as_str), Some("line 99"));
    }

    fn failed(stderr: &[&str], unreadable: bool) -> VideoError {
        let mut tail = Tail::default();
        stderr.iter().for_each(|l| tail.push(l));
        let finished = Finished {
            status: ExitStatus::from_raw(1 << 8),
            tail,
        };
        check("ffprobe", &finished, unreadable, &["file:/srv/tmp/in.mp4"]).unwrap_err()
    }

    #[test]
    fn reasons_are_short_and_hide_paths() {
        let e = failed(
            &[
                "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55b3dac86200] moov atom not found",
                "file:/srv/tmp/in.mp4: Invalid data found when processing input",
            ],
            true,
        );
        assert_eq!(
            e.to_string(),
            "the file is not a video ffmpeg can read: moov atom not found; \
             Invalid data found when processing input"
        );
        let e = failed(&[&"garbage ".repeat(100)], false);
        assert!(matches!(e, VideoError::Failed(_)));
        assert!(e.to_string().chars().count() < MAX_REASON + 50, "{e}");
    }

    #[test]
    fn refused_formats_name_the_demuxer() {
        let e = failed(
            &[
                "[hls @ 0x5608618cb900] Format not on whitelist 'mov,matroska'",
                "file:/srv/tmp/in.mp4: Invalid argument",
            ],
            true,
        );
        assert_eq!(
            e.to_string(),
            "the file is a playlist, not a video this server accepts"
        );
    }

    #[test]
    fn a_full_disk_is_retryable() {
        let e = failed(&["file:/srv/out.mp4: No space left on device"], false);
        assert!(e.is_retryable(), "{e:?}");
    }

    #[test]
    fn signals_are_reported_as_killed() {
        let finished = Finished {
            status: ExitStatus::from_raw(9),
            tail: Tail::default(),
        };
        let e = check("ffmpeg", &finished, false, &[]).unwrap_err();
        assert!(matches!(e, VideoError::Killed { signal: 9, .. }), "{e:?}");
    }
}

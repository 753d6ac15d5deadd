//! Profiling on several threads.
//!
//! The calling thread reads the input and cuts it into chunks of about `chunk_bytes` that each
//! start and end at a record ([`crate::split`] finds the ends), and puts them in one bounded
//! queue that the workers take from as they get free (on a shared machine a worker that is
//! not scheduled for a while then holds up nobody). Each worker profiles its chunks into
//! column states of its own and reports, per chunk, its line breaks and counts; the calling
//! thread folds those reports in file order, so bad rows keep their line numbers, and at the
//! end merges the workers' column states.
//!
//! Memory stays bounded: at most `QUEUE_DEPTH + 2` chunks per worker exist at a time (queued,
//! in work, on their way back), plus the one being filled. A record so long that no record end
//! turns up within `chunk_bytes + max_record_bytes` bytes stops the cutting: the rest of the
//! input is then read on the calling thread, as with one thread.

use crate::ProfileError;
use crate::column::ColumnProfile;
use crate::reader::{Next, RecordReader};
use crate::run::{self, CHECK_EVERY, Counts, Job};
use crate::split::Boundaries;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

/// Chunks waiting in the queue, per worker.
const QUEUE_DEPTH: usize = 2;
/// Bytes asked of the input per read; progress is reported after each read.
const READ_BYTES: usize = 256 * 1024;

/// A part of the input that starts at a record: `data[..len]`.
struct Chunk {
    seq: u64,
    data: Vec<u8>,
    len: usize,
}

/// A worker's report on one chunk.
struct Done {
    seq: u64,
    line_breaks: u64,
    counts: Counts,
    /// The chunk's buffer, to be filled again.
    buffer: Vec<u8>,
}

/// Profiles the records after `reader`'s position on `threads` workers. Returns the merged
/// column states, the counts (lines numbered in the whole input) and the bytes read.
pub(crate) fn run<R: Read>(
    reader: RecordReader<R>,
    job: &Job,
    threads: usize,
    progress: &mut dyn FnMut(u64),
    reported: &mut u64,
    cancel: &AtomicBool,
) -> Result<(Vec<ColumnProfile>, Counts, u64), ProfileError> {
    let (input, rest, bytes_read, line_breaks, skip_lf, eof) = reader.into_rest();
    let mut feeder = Feeder::new(input, rest, bytes_read, eof, job);
    if skip_lf {
        feeder.skip_leading_lf()?;
    }
    let mut fold = Fold {
        counts: Counts::default(),
        line_offset: line_breaks,
        next: 0,
        waiting: BTreeMap::new(),
        max_examples: job.opts.max_bad_row_examples,
        spare: Vec::new(),
        max_spare: threads * (QUEUE_DEPTH + 2),
    };
    // Raised when the calling thread gives up, so that the workers do too.
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel();
        let (queue, chunks) = mpsc::sync_channel(QUEUE_DEPTH * threads);
        // Only the workers hold the receiving end: should they all leave, sending fails
        // rather than waiting for ever.
        let chunks = Arc::new(Mutex::new(chunks));
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (chunks, done_tx, stop) = (chunks.clone(), done_tx.clone(), &stop);
            workers.push(scope.spawn(move || work(&chunks, done_tx, job, cancel, stop)));
        }
        drop((chunks, done_tx));
        let fed = feed(
            &mut feeder,
            &queue,
            &done_rx,
            &mut fold,
            progress,
            reported,
            cancel,
        );
        drop(queue);
        if fed.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // The workers finish their queues, then hand over their column states.
        let mut merged: Option<Vec<ColumnProfile>> = None;
        let mut complete = true;
        for worker in workers {
            match worker.join() {
                Ok(Some(columns)) => match &mut merged {
                    None => merged = Some(columns),
                    Some(merged) => merged
                        .iter_mut()
                        .zip(columns)
                        .for_each(|(mine, theirs)| mine.merge(theirs)),
                },
                Ok(None) => complete = false,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        let rest = fed?;
        run::check_cancel(cancel)?;
        for done in done_rx.try_iter() {
            fold.add(done);
        }
        if !complete || !fold.waiting.is_empty() {
            // Only a cancelled run leaves a worker short; the check above caught it.
            return Err(ProfileError::Cancelled);
        }
        let mut columns = merged.unwrap_or_else(|| job.columns());
        let mut counts = fold.counts;
        let mut bytes = feeder.bytes_read;
        if let Some((rest_columns, rest_counts, rest_bytes)) = rest {
            columns
                .iter_mut()
                .zip(rest_columns)
                .for_each(|(mine, theirs)| mine.merge(theirs));
            counts.append(rest_counts, fold.line_offset, fold.max_examples);
            bytes = rest_bytes;
        }
        Ok((columns, counts, bytes))
    })
}

/// The calling thread's part: reads, cuts and deals out chunks. When a record too long for
/// a chunk stops the cutting, profiles the rest itself and returns that.
#[allow(clippy::type_complexity)]
fn feed<R: Read>(
    feeder: &mut Feeder<R>,
    queue: &SyncSender<Chunk>,
    done: &Receiver<Done>,
    fold: &mut Fold,
    progress: &mut dyn FnMut(u64),
    reported: &mut u64,
    cancel: &AtomicBool,
) -> Result<Option<(Vec<ColumnProfile>, Counts, u64)>, ProfileError> {
    let mut seq = 0u64;
    loop {
        run::check_cancel(cancel)?;
        run::report_progress(progress, reported, feeder.bytes_read);
        for report in done.try_iter() {
            fold.add(report);
        }
        let chunk = match feeder.step(&mut fold.spare)? {
            Step::Read => continue,
            Step::End => return Ok(None),
            Step::Chunk(data, len) => Chunk { seq, data, len },
            Step::TooLong => return feeder.profile_rest(progress, reported, cancel).map(Some),
        };
        if queue.send(chunk).is_err() {
            // Workers leave early only when the run is cancelled (or they panicked, which
            // joining them reports).
            run::check_cancel(cancel)?;
            return Err(ProfileError::Cancelled);
        }
        seq += 1;
    }
}

/// A worker: profiles chunks from the queue into its own column states. `None` if it
/// stopped early.
fn work(
    queue: &Mutex<Receiver<Chunk>>,
    done: Sender<Done>,
    job: &Job,
    cancel: &AtomicBool,
    stop: &AtomicBool,
) -> Option<Vec<ColumnProfile>> {
    let mut columns = job.columns();
    // The lock is held while waiting for a chunk: the next free worker waits for the lock.
    while let Ok(chunk) = queue
        .lock()
        .map_err(drop)
        .and_then(|q| q.recv().map_err(drop))
    {
        let mut reader = RecordReader::over_chunk(chunk.data, chunk.len, job.dialect)
            .with_limits(job.opts.max_record_bytes, job.width + 1);
        let mut counts = Counts::default();
        let mut since_check = 0;
        loop {
            since_check += 1;
            if since_check == CHECK_EVERY {
                since_check = 0;
                if cancel.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                    return None;
                }
            }
            // The chunk is in memory: reading it cannot fail.
            match reader.next_record() {
                Ok(Next::Record) => run::record(&mut columns, &mut counts, &reader, job.opts),
                Ok(Next::Blank) => counts.blank_lines += 1,
                Ok(Next::End) | Err(_) => break,
            }
        }
        let report = Done {
            seq: chunk.seq,
            line_breaks: reader.line_breaks(),
            counts,
            buffer: reader.into_buffer(),
        };
        if done.send(report).is_err() {
            return None;
        }
    }
    Some(columns)
}

/// Chunk reports put back in file order.
struct Fold {
    counts: Counts,
    /// Line breaks in the input before the next chunk to fold.
    line_offset: u64,
    next: u64,
    waiting: BTreeMap<u64, (u64, Counts)>,
    max_examples: usize,
    /// Buffers of profiled chunks, for the next ones.
    spare: Vec<Vec<u8>>,
    max_spare: usize,
}

impl Fold {
    fn add(&mut self, done: Done) {
        if self.spare.len() < self.max_spare {
            self.spare.push(done.buffer);
        }
        self.waiting
            .insert(done.seq, (done.line_breaks, done.counts));
        while let Some((line_breaks, counts)) = self.waiting.remove(&self.next) {
            self.counts
                .append(counts, self.line_offset, self.max_examples);
            self.line_offset += line_breaks;
            self.next += 1;
        }
    }
}

/// What [`Feeder::step`] did.
enum Step {
    /// Read more input; no chunk is ready yet.
    Read,
    /// A chunk, `data[..len]`.
    Chunk(Vec<u8>, usize),
    /// No record ends within the limit.
    TooLong,
    /// The input is used up.
    End,
}

/// Reads the input into chunk buffers and cuts it at record ends: at the last one within
/// `chunk_bytes`, or the first after when there is none.
struct Feeder<'j, R> {
    input: Option<R>,
    job: &'j Job<'j>,
    /// `buf[start..filled]` is read and not yet dealt out; `buf[start..scanned]` is scanned.
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    scanned: usize,
    /// The last record end found in `buf[start..scanned]`.
    boundary: Option<usize>,
    scanner: Boundaries,
    eof: bool,
    bytes_read: u64,
    chunk_bytes: usize,
    /// Bytes without a record end after which the cutting stops.
    limit: usize,
}

impl<'j, R: Read> Feeder<'j, R> {
    fn new(input: R, rest: Vec<u8>, bytes_read: u64, eof: bool, job: &'j Job<'j>) -> Self {
        let chunk_bytes = job.opts.chunk_bytes;
        Self {
            input: Some(input),
            job,
            filled: rest.len(),
            buf: rest,
            start: 0,
            scanned: 0,
            boundary: None,
            scanner: Boundaries::new(job.dialect),
            eof,
            bytes_read,
            chunk_bytes,
            limit: chunk_bytes
                .saturating_add(job.opts.max_record_bytes)
                .saturating_add(READ_BYTES),
        }
    }

    /// Drops an LF at the start: the second half of a CRLF whose CR ended the header.
    fn skip_leading_lf(&mut self) -> io::Result<()> {
        if self.filled == 0 && !self.eof {
            self.read(1)?;
        }
        if self.filled > 0 && self.buf[0] == b'\n' {
            (self.start, self.scanned) = (1, 1);
        }
        Ok(())
    }

    fn step(&mut self, spare: &mut Vec<Vec<u8>>) -> io::Result<Step> {
        self.scan();
        if let Some(end) = self.boundary
            && self.scanned - self.start >= self.chunk_bytes
        {
            return Ok(self.cut(end, spare));
        }
        if self.eof {
            if self.start == self.filled {
                return Ok(Step::End);
            }
            let end = self.filled;
            return Ok(self.cut(end, spare));
        }
        if self.boundary.is_none() && self.filled - self.start >= self.limit {
            return Ok(Step::TooLong);
        }
        // Up to a chunk's worth, then in growing steps while no record end turns up.
        let held = self.filled - self.start;
        let want = if held < self.chunk_bytes {
            self.chunk_bytes - held
        } else {
            held.max(1)
        };
        self.read(want.min(READ_BYTES))?;
        Ok(Step::Read)
    }

    /// Reads up to `want` bytes after the filled part.
    fn read(&mut self, want: usize) -> io::Result<()> {
        if self.buf.len() < self.filled + want && self.start > 0 {
            // Move what is held to the front rather than grow.
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.scanned -= self.start;
            self.boundary = self.boundary.map(|b| b - self.start);
            self.start = 0;
        }
        if self.buf.len() < self.filled + want {
            self.buf.resize(self.filled + want, 0);
        }
        let Some(input) = self.input.as_mut() else {
            self.eof = true;
            return Ok(());
        };
        loop {
            match input.read(&mut self.buf[self.filled..self.filled + want]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.filled += n;
                    self.bytes_read += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Scans on up to the end of the current chunk, and past it in small pieces until a
    /// record end turns up.
    fn scan(&mut self) {
        let chunk_end = self.start.saturating_add(self.chunk_bytes);
        let piece = self.chunk_bytes.clamp(1, 4096);
        while self.scanned < self.filled && (self.boundary.is_none() || self.scanned < chunk_end) {
            let mut end = if self.scanned < chunk_end {
                self.filled.min(chunk_end)
            } else {
                self.filled.min(self.scanned + piece)
            };
            // A CR is scanned with the byte after it, which may be the LF of a CRLF; a
            // final CR waits for the next read.
            while end < self.filled && self.buf[end - 1] == b'\r' {
                end += 1;
            }
            if end == self.filled && !self.eof && self.buf[end - 1] == b'\r' {
                end -= 1;
                if end == self.scanned {
                    return;
                }
            }
            if let Some(at) = self.scanner.scan(&self.buf[self.scanned..end]) {
                self.boundary = Some(self.scanned + at);
            }
            self.scanned = end;
        }
    }

    /// Deals out `buf[start..end]`: hands over this buffer when little follows the chunk
    /// (that little moves to a new one), else copies the chunk out.
    fn cut(&mut self, end: usize, spare: &mut Vec<Vec<u8>>) -> Step {
        let len = end - self.start;
        let tail = self.filled - end;
        let mut next = spare.pop().unwrap_or_default();
        self.boundary = None;
        if self.start == 0 && tail <= len {
            if next.len() < tail {
                next.resize(tail, 0);
            }
            next[..tail].copy_from_slice(&self.buf[end..self.filled]);
            (self.filled, self.scanned) = (tail, self.scanned - end);
            return Step::Chunk(std::mem::replace(&mut self.buf, next), len);
        }
        if next.len() < len {
            next.resize(len, 0);
        }
        next[..len].copy_from_slice(&self.buf[self.start..end]);
        self.start = end;
        Step::Chunk(next, len)
    }

    /// Profiles the rest of the input on this thread, lines numbered from the rest's start.
    fn profile_rest(
        &mut self,
        progress: &mut dyn FnMut(u64),
        reported: &mut u64,
        cancel: &AtomicBool,
    ) -> Result<(Vec<ColumnProfile>, Counts, u64), ProfileError> {
        let input = self.input.take().expect("the input is still here");
        let mut prefix = std::mem::take(&mut self.buf);
        prefix.truncate(self.filled);
        prefix.drain(..self.start);
        (self.start, self.filled, self.scanned) = (0, 0, 0);
        let mut reader = RecordReader::new(input, prefix, self.bytes_read, self.job.dialect)
            .with_limits(self.job.opts.max_record_bytes, self.job.width + 1);
        let (columns, counts) = run::sequential(&mut reader, self.job, progress, reported, cancel)?;
        self.eof = true;
        Ok((columns, counts, reader.bytes_read()))
    }
}

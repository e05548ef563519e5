//! Write-ahead log with group commit (DESIGN §7): a 202 means the record is in the log.
//!
//! One task owns the log file. Requests queue on a channel with their payload already
//! encoded (by the request's own task); the task drains whatever is waiting and writes
//! one record per request in one `write`. It runs on the server's tokio runtime, not on
//! a thread of its own: handing each hit to a thread and back cost two futex wake-ups
//! and context switches per group (~13 % of the server's CPU under `/api/event` load);
//! a small write to the page cache is cheaper than that, and large groups (bulk bodies)
//! are written on the blocking pool. A thread calls `fdatasync` for everything written
//! since its last one (group commit), then acknowledges the requests that wait for it and
//! publishes the new durable LSN. Writing never waits for an fsync in progress.
//!
//! Two acknowledgements (`Ack`): `Synced` after the fsync, for senders that retry (the
//! bulk API: its 202 promises the batch is on disk); `Written` once the record is in the
//! file (the kernel's page cache: it survives `kill -9` of the server, not a power cut
//! in the next few milliseconds), for browser hits, which are never re-sent whatever the
//! answer, so waiting for the disk would only add its latency (~3 ms per fsync on the
//! benchmark VM) to every hit. Record layout: `len u32 | crc32 u32 | lsn u64 | payload`
//! (see `record` for the payload kinds). Segments are named by their first LSN.
//!
//! The log is also the queue of work behind it: the applier reads records back from the
//! segment files (`LogReader`, served from the page cache while they are fresh), so the
//! backlog of accepted-but-unapplied records lives on disk, not in memory. Segments are
//! deleted once the store has applied every record in them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use tokio::sync::{oneshot, watch};

const HEADER: usize = 16;
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// How often an idle log thread looks for segments it can delete.
const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);
/// Upper bound on one record (a 16 MiB bulk body encodes to less).
const MAX_RECORD: usize = 256 * 1024 * 1024;
/// Groups larger than this are written on the blocking pool, so a bulk body does not hold
/// a runtime worker in a long `write`.
const INLINE_WRITE_BYTES: usize = 256 * 1024;
/// Least time between two fsync requests for records no one waits on (`Ack::Written`):
/// back-to-back fsyncs (~300/s on the benchmark VM) cost ~6 % of the server's CPU under
/// `/api/event` load, and such records only need to reach the disk soon (power cut
/// window, and the applier stores durable records only). A waiting `Ack::Synced` append
/// is never held back.
const SYNC_SPACING: std::time::Duration = std::time::Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("write-ahead log record could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Decode(#[from] crate::record::DecodeError),
    #[error("write-ahead log writer has stopped")]
    Closed,
}

/// When an append is acknowledged (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Once `fdatasync` has returned for the record.
    Synced,
    /// Once the record is written to the log file, before its fsync.
    Written,
}

type Done = oneshot::Sender<Result<u64, String>>;

struct Request {
    payload: Vec<u8>,
    ack: Ack,
    done: Done,
}

/// Written records the sync thread must make durable: up to `upto` in `file`, then
/// acknowledge `waiting` (lsn, reply).
struct SyncJob {
    file: Arc<File>,
    upto: u64,
    waiting: Vec<(u64, Done)>,
}

/// Byte counters of the log: written (durable) and applied to the store. Their
/// difference is the backlog that admission control bounds.
#[derive(Default)]
pub struct LogBytes {
    pub written: AtomicU64,
    pub applied: AtomicU64,
}

impl LogBytes {
    pub fn backlog(&self) -> u64 {
        let applied = self.applied.load(Ordering::Relaxed);
        self.written.load(Ordering::Relaxed).saturating_sub(applied)
    }
}

/// Handle to the log-writer task.
#[derive(Clone)]
pub struct Wal {
    tx: tokio::sync::mpsc::UnboundedSender<Request>,
    truncate_tx: std_mpsc::Sender<u64>,
    durable: watch::Receiver<u64>,
    pub bytes: Arc<LogBytes>,
}

fn segment_path(dir: &Path, first_lsn: u64) -> PathBuf {
    dir.join(format!("{first_lsn:020}.wal"))
}

/// Segments in LSN order as (first_lsn, path).
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads one record header and payload; `None` at a clean end of file, `Err` with
/// `InvalidData` for a torn or corrupt record.
fn read_record(reader: &mut impl Read) -> io::Result<Option<(u64, Vec<u8>)>> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match reader.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::InvalidData, "torn header")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut lsn_bytes = [0u8; 8];
    lsn_bytes.copy_from_slice(&header[8..16]);
    let lsn = u64::from_le_bytes(lsn_bytes);
    if len > MAX_RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record too long",
        ));
    }
    let mut payload = vec![0u8; len];
    match reader.read_exact(&mut payload) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "torn payload"));
        }
        Err(e) => return Err(e),
    }
    if crc32fast::hash(&payload) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "checksum mismatch",
        ));
    }
    Ok(Some((lsn, payload)))
}

/// What start-up found in the log directory.
pub struct Recovered {
    /// Highest intact LSN on disk (or `after` when there is none above it).
    pub last_lsn: u64,
    /// Bytes of records above `after`: the backlog the applier starts with.
    pub pending_bytes: u64,
}

/// Checks every record of `dir`; a torn record at the end of the last segment (a crash
/// mid-write) is cut off, corruption anywhere else is an error.
pub fn recover(dir: &Path, after: u64) -> Result<Recovered, WalError> {
    fs::create_dir_all(dir)?;
    let segs = segments(dir)?;
    let mut last_lsn = after;
    let mut pending_bytes = 0;
    let count = segs.len();
    for (i, (_, path)) in segs.iter().enumerate() {
        let mut reader = BufReader::new(File::open(path)?);
        let mut offset: u64 = 0;
        loop {
            match read_record(&mut reader) {
                Ok(None) => break,
                Ok(Some((lsn, payload))) => {
                    let size = (HEADER + payload.len()) as u64;
                    offset += size;
                    last_lsn = last_lsn.max(lsn);
                    if lsn > after {
                        pending_bytes += size;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData && i + 1 == count => {
                    tracing::warn!(file = %path.display(), offset, "cutting torn record at the end of the write-ahead log");
                    OpenOptions::new().write(true).open(path)?.set_len(offset)?;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    return Err(WalError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("corrupt record in {} at byte {offset}: {e}", path.display()),
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Recovered {
        last_lsn,
        pending_bytes,
    })
}

/// Reads records back in LSN order, never past the durable LSN: the applier's queue.
pub struct LogReader {
    dir: PathBuf,
    next_lsn: u64,
    file: Option<BufReader<File>>,
}

impl LogReader {
    /// A reader positioned at the first record after `after`.
    pub fn new(dir: PathBuf, after: u64) -> LogReader {
        LogReader {
            dir,
            next_lsn: after + 1,
            file: None,
        }
    }

    /// The next record if it is durable (`lsn <= durable`), as (lsn, payload, bytes).
    pub fn next(&mut self, durable: u64) -> Result<Option<(u64, Vec<u8>, u64)>, WalError> {
        while self.next_lsn <= durable {
            if self.file.is_none() {
                self.open_segment(true)?;
            }
            let Some(file) = self.file.as_mut() else {
                continue;
            };
            match read_record(file)? {
                Some((lsn, payload)) if lsn >= self.next_lsn => {
                    self.next_lsn = lsn + 1;
                    let size = (HEADER + payload.len()) as u64;
                    return Ok(Some((lsn, payload, size)));
                }
                // Before the start point (already in the store).
                Some(_) => {}
                // End of this segment: a durable record further on is in a later one.
                None => self.open_segment(false)?,
            }
        }
        Ok(None)
    }

    /// Opens the segment holding `next_lsn` (`containing`: the last one starting at or
    /// before it) or the next one after the current. Segments are deleted only once
    /// applied, so a missing range was applied: the reader moves on to what exists.
    fn open_segment(&mut self, containing: bool) -> Result<(), WalError> {
        let segs = segments(&self.dir)?;
        let found = if containing {
            segs.iter()
                .rev()
                .find(|(first, _)| *first <= self.next_lsn)
                .or_else(|| segs.first())
        } else {
            segs.iter().find(|(first, _)| *first >= self.next_lsn)
        };
        let Some((first, path)) = found else {
            return Err(WalError::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!("write-ahead log record {} is missing", self.next_lsn),
            )));
        };
        self.next_lsn = self.next_lsn.max(*first);
        self.file = Some(BufReader::with_capacity(1 << 20, File::open(path)?));
        Ok(())
    }
}

impl Wal {
    /// Starts the writer task (on the current tokio runtime) and the sync thread.
    /// `next_lsn` continues after the highest LSN on disk; `applied` is the store's
    /// checkpoint and `pending_bytes` the unapplied bytes on disk.
    pub fn start(
        dir: PathBuf,
        next_lsn: u64,
        applied: u64,
        pending_bytes: u64,
    ) -> Result<Wal, WalError> {
        fs::create_dir_all(&dir)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let (truncate_tx, truncate_rx) = std_mpsc::channel::<u64>();
        let (durable_tx, durable) = watch::channel(next_lsn - 1);
        let (sync_tx, sync_rx) = std_mpsc::channel::<SyncJob>();
        let bytes = Arc::new(LogBytes::default());
        bytes.written.store(pending_bytes, Ordering::Relaxed);
        let writer = Writer::open(dir, next_lsn, bytes.clone(), sync_tx)?;
        std::thread::Builder::new()
            .name("footfall-wal-sync".into())
            .spawn(move || sync_loop(sync_rx, durable_tx))?;
        tokio::spawn(writer.run(rx, truncate_rx, applied));
        Ok(Wal {
            tx,
            truncate_tx,
            durable,
            bytes,
        })
    }

    /// Appends one encoded record and waits until it is on disk (`Ack::Synced`) or in the
    /// log file (`Ack::Written`). Returns its LSN.
    pub async fn append(&self, payload: Vec<u8>, ack: Ack) -> Result<u64, WalError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { payload, ack, done })
            .map_err(|_| WalError::Closed)?;
        match wait.await {
            Ok(Ok(lsn)) => Ok(lsn),
            Ok(Err(msg)) => Err(WalError::Io(io::Error::other(msg))),
            Err(_) => Err(WalError::Closed),
        }
    }

    /// The highest durable (fsynced) LSN, updated after each group commit.
    pub fn durable(&self) -> watch::Receiver<u64> {
        self.durable.clone()
    }

    /// Tells the log that everything up to `lsn` is in the store, so old segments can go.
    pub fn applied_up_to(&self, lsn: u64) {
        let _ = self.truncate_tx.send(lsn);
    }
}

/// `write_all` for several slices (std's `write_all_vectored` is unstable).
fn write_all_vectored(mut file: &File, mut slices: &mut [io::IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct Writer {
    dir: PathBuf,
    /// Shared with the sync thread, which may still be syncing a segment rolled away from.
    file: Arc<File>,
    file_first_lsn: u64,
    file_len: u64,
    next_lsn: u64,
    buf: Vec<u8>,
    bytes: Arc<LogBytes>,
    sync: std_mpsc::Sender<SyncJob>,
    /// Written records whose fsync request waits for `SYNC_SPACING` to pass.
    held: Option<SyncJob>,
    last_sync_request: std::time::Instant,
}

/// The group commit: syncs whatever was written while the previous fsync ran, in one
/// call per segment file, then acknowledges and publishes. A failed fsync is retried (the
/// records stay unacknowledged and unapplied meanwhile): the file's state is unknown, and
/// acknowledging would promise what the disk may not hold.
fn sync_loop(rx: std_mpsc::Receiver<SyncJob>, durable: watch::Sender<u64>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter());
        let mut delay = std::time::Duration::from_millis(10);
        loop {
            let mut synced: Vec<&Arc<File>> = Vec::new();
            let result = jobs.iter().try_for_each(|job| {
                if synced.iter().any(|f| Arc::ptr_eq(f, &job.file)) {
                    return Ok(());
                }
                synced.push(&job.file);
                job.file.sync_data()
            });
            match result {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, "write-ahead log fsync failed; retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
        let upto = jobs.iter().map(|j| j.upto).max().unwrap_or(0);
        durable.send_if_modified(|d| {
            let moved = upto > *d;
            *d = (*d).max(upto);
            moved
        });
        for job in jobs {
            for (lsn, done) in job.waiting {
                let _ = done.send(Ok(lsn));
            }
        }
    }
}

impl Writer {
    fn open(
        dir: PathBuf,
        next_lsn: u64,
        bytes: Arc<LogBytes>,
        sync: std_mpsc::Sender<SyncJob>,
    ) -> Result<Writer, WalError> {
        // Always start a fresh segment: the previous one may have been cut after a crash.
        let path = segment_path(&dir, next_lsn);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let file_len = file.metadata()?.len();
        sync_dir(&dir)?;
        Ok(Writer {
            dir,
            file: Arc::new(file),
            file_first_lsn: next_lsn,
            file_len,
            next_lsn,
            buf: Vec::with_capacity(64 * HEADER),
            bytes,
            sync,
            held: None,
            last_sync_request: std::time::Instant::now(),
        })
    }

    async fn run(
        mut self,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Request>,
        truncate_rx: std_mpsc::Receiver<u64>,
        mut applied_lsn: u64,
    ) {
        loop {
            let wait = match self.held {
                Some(_) => SYNC_SPACING.saturating_sub(self.last_sync_request.elapsed()),
                None => IDLE_TICK,
            };
            let first = match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Some(first)) => first,
                Ok(None) => {
                    self.send_held();
                    break;
                }
                Err(_) if self.held.is_some() => {
                    self.send_held();
                    continue;
                }
                Err(_idle) => {
                    applied_lsn = applied_lsn.max(truncate_rx.try_iter().max().unwrap_or(0));
                    if let Err(e) = self.retire_if_applied(applied_lsn) {
                        tracing::warn!(error = %e, "could not remove applied log segments");
                    }
                    continue;
                }
            };
            // Let the requests already runnable on this worker queue their records first:
            // one `write` per group costs a syscall and an inode update, and under
            // `/api/event` load groups of a few records made that ~6 % of server CPU.
            tokio::task::yield_now().await;
            let mut group = vec![first];
            // Everything that queued while the last write ran goes in one write.
            while group.len() < 4096 {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            let size: usize = group.iter().map(|r| r.payload.len()).sum();
            let written = if size > INLINE_WRITE_BYTES {
                let blocking = tokio::task::spawn_blocking(move || {
                    let written = self.write_group(&group);
                    (self, group, written)
                });
                match blocking.await {
                    Ok((writer, back, written)) => {
                        self = writer;
                        group = back;
                        written
                    }
                    Err(e) => {
                        // The writer (and the waiting requests, which see the log closed)
                        // went with the panicked task; nothing more can be written.
                        tracing::error!(error = %e, "write-ahead log writer failed");
                        return;
                    }
                }
            } else {
                self.write_group(&group)
            };
            match written {
                Ok(first_lsn) => {
                    let mut waiting = Vec::new();
                    for (i, req) in group.into_iter().enumerate() {
                        let lsn = first_lsn + i as u64;
                        match req.ack {
                            Ack::Written => {
                                let _ = req.done.send(Ok(lsn));
                            }
                            Ack::Synced => waiting.push((lsn, req.done)),
                        }
                    }
                    let job = SyncJob {
                        file: self.file.clone(),
                        upto: self.next_lsn - 1,
                        waiting,
                    };
                    self.request_sync(job);
                }
                Err(e) => {
                    tracing::error!(error = %e, "write-ahead log write failed; batch refused");
                    for req in group {
                        let _ = req.done.send(Err(e.to_string()));
                    }
                }
            }
            if let Some(lsn) = truncate_rx.try_iter().max() {
                applied_lsn = applied_lsn.max(lsn);
                if let Err(e) = self.remove_applied(applied_lsn) {
                    tracing::warn!(error = %e, "could not remove applied log segments");
                }
            }
        }
    }

    /// Hands written records to the sync thread, holding back those no one waits on
    /// until `SYNC_SPACING` has passed since the last request (the run loop's timer
    /// sends them then at the latest).
    fn request_sync(&mut self, job: SyncJob) {
        if job.waiting.is_empty() && self.last_sync_request.elapsed() < SYNC_SPACING {
            match &mut self.held {
                Some(held) if Arc::ptr_eq(&held.file, &job.file) => held.upto = job.upto,
                // A new segment: the old one's records go now.
                Some(_) => {
                    self.send_held();
                    self.held = Some(job);
                }
                None => self.held = Some(job),
            }
            return;
        }
        self.send_held();
        self.send_sync(job);
    }

    fn send_held(&mut self) {
        if let Some(held) = self.held.take() {
            self.send_sync(held);
        }
    }

    fn send_sync(&mut self, job: SyncJob) {
        self.last_sync_request = std::time::Instant::now();
        if let Err(std_mpsc::SendError(job)) = self.sync.send(job) {
            for (_, done) in job.waiting {
                let _ = done.send(Err("write-ahead log sync has stopped".into()));
            }
        }
    }

    fn write_group(&mut self, group: &[Request]) -> Result<u64, WalError> {
        if self.file_len >= SEGMENT_BYTES {
            self.roll()?;
        }
        // Record headers go into `buf`; payloads are written from where they are (one
        // writev), not copied next to them: a bulk group is megabytes, and a buffer that
        // size, grown and freed per group, was re-faulted by the kernel each time.
        self.buf.clear();
        let first_lsn = self.next_lsn;
        for (i, req) in group.iter().enumerate() {
            let payload = &req.payload;
            self.buf
                .extend_from_slice(&(payload.len() as u32).to_le_bytes());
            self.buf
                .extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            self.buf
                .extend_from_slice(&(first_lsn + i as u64).to_le_bytes());
        }
        let mut slices = Vec::with_capacity(group.len() * 2);
        for (header, req) in self.buf.chunks_exact(HEADER).zip(group) {
            slices.push(io::IoSlice::new(header));
            slices.push(io::IoSlice::new(&req.payload));
        }
        let total = self.buf.len() + group.iter().map(|r| r.payload.len()).sum::<usize>();
        if let Err(e) = write_all_vectored(&self.file, &mut slices) {
            // A partial write must not be followed by good records: cut back and retry later.
            let _ = self.file.set_len(self.file_len);
            let _ = (&*self.file).seek(SeekFrom::End(0));
            return Err(e.into());
        }
        self.file_len += total as u64;
        self.next_lsn += group.len() as u64;
        self.bytes
            .written
            .fetch_add(total as u64, Ordering::Relaxed);
        Ok(first_lsn)
    }

    fn roll(&mut self) -> Result<(), WalError> {
        let path = segment_path(&self.dir, self.next_lsn);
        self.file = Arc::new(OpenOptions::new().create(true).append(true).open(path)?);
        self.file_first_lsn = self.next_lsn;
        self.file_len = 0;
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// When idle and everything written is in the store, starts a fresh segment so the
    /// current one can go too: an idle server keeps no log.
    fn retire_if_applied(&mut self, applied_lsn: u64) -> Result<(), WalError> {
        if self.file_len > 0 && applied_lsn + 1 == self.next_lsn {
            self.roll()?;
        }
        self.remove_applied(applied_lsn)
    }

    /// Deletes segments whose every record is at or below `lsn`.
    fn remove_applied(&mut self, lsn: u64) -> Result<(), WalError> {
        let segs = segments(&self.dir)?;
        for pair in segs.windows(2) {
            let (first, path) = &pair[0];
            let next_first = pair[1].0;
            if *first != self.file_first_lsn && next_first.saturating_sub(1) <= lsn {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_idle_log_deletes_what_the_store_has() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::start(dir.path().to_path_buf(), 1, 0, 0).expect("start");
        let lsn = wal
            .append(b"[]".to_vec(), Ack::Synced)
            .await
            .expect("append");
        wal.applied_up_to(lsn);
        tokio::time::sleep(IDLE_TICK * 3).await;
        let bytes: u64 = segments(dir.path())
            .expect("segments")
            .iter()
            .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        assert_eq!(bytes, 0, "applied records should be gone");
        assert_eq!(
            wal.append(b"[]".to_vec(), Ack::Synced)
                .await
                .expect("append"),
            lsn + 1
        );
    }

    #[tokio::test]
    async fn written_acks_do_not_wait_for_the_fsync_but_are_synced_soon() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::start(dir.path().to_path_buf(), 1, 0, 0).expect("start");
        let hit = wal
            .append(b"hit".to_vec(), Ack::Written)
            .await
            .expect("append");
        let bulk = wal
            .append(b"bulk".to_vec(), Ack::Synced)
            .await
            .expect("append");
        assert_eq!((hit, bulk), (1, 2));
        // A synced append covers every record written before it.
        assert!(*wal.durable().borrow() >= 2);
        let late = wal
            .append(b"late".to_vec(), Ack::Written)
            .await
            .expect("append");
        let mut durable = wal.durable();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            durable.wait_for(|d| *d >= late),
        )
        .await
        .expect("a written record is synced without further appends")
        .expect("log open");
    }

    #[tokio::test]
    async fn records_are_read_back_across_segments_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::start(dir.path().to_path_buf(), 1, 0, 0).expect("start");
        assert_eq!(
            wal.append(b"one".to_vec(), Ack::Synced)
                .await
                .expect("append"),
            1
        );
        assert_eq!(
            wal.append(b"two".to_vec(), Ack::Synced)
                .await
                .expect("append"),
            2
        );
        assert_eq!(*wal.durable().borrow(), 2);
        assert_eq!(wal.bytes.backlog(), 2 * HEADER as u64 + 6);
        drop(wal);
        // A second run continues in a new segment.
        let wal = Wal::start(dir.path().to_path_buf(), 3, 0, 0).expect("start");
        assert_eq!(
            wal.append(b"three".to_vec(), Ack::Synced)
                .await
                .expect("append"),
            3
        );
        drop(wal);

        let mut reader = LogReader::new(dir.path().to_path_buf(), 1);
        let read: Vec<(u64, Vec<u8>)> = std::iter::from_fn(|| reader.next(3).expect("read"))
            .map(|(lsn, p, _)| (lsn, p))
            .collect();
        assert_eq!(read, vec![(2, b"two".to_vec()), (3, b"three".to_vec())]);

        // Simulate a crash in the middle of a record.
        let (_, last) = segments(dir.path())
            .expect("segments")
            .pop()
            .expect("one segment");
        let mut f = OpenOptions::new().append(true).open(&last).expect("open");
        f.write_all(&[200, 0, 0, 0, 1, 2]).expect("write");
        let found = recover(dir.path(), 1).expect("recover");
        assert_eq!(found.last_lsn, 3);
        assert_eq!(found.pending_bytes, 2 * HEADER as u64 + 8);
        assert_eq!(
            fs::metadata(&last).expect("segment").len(),
            HEADER as u64 + 5
        );
    }

    /// More slices than one writev takes (IOV_MAX is 1024 on Linux): every byte lands,
    /// in order.
    #[test]
    fn vectored_writes_finish_past_the_iovec_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        let file = File::create(&path).expect("create");
        let parts: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| i.to_le_bytes().repeat(1 + (i % 7) as usize))
            .collect();
        let mut slices: Vec<io::IoSlice> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        write_all_vectored(&file, &mut slices).expect("write");
        assert_eq!(fs::read(&path).expect("read"), parts.concat());
    }
}

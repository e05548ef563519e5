//! Write-ahead log with group commit (DESIGN §7): a 202 means the event is on disk.
//!
//! One thread owns the log. Requests queue on a channel; the thread drains whatever is
//! waiting, writes one record per request, calls `fdatasync` once for all of them and only
//! then acknowledges. Record layout: `len u32 | crc32 u32 | lsn u64 | payload (JSON events)`.
//! Segments are named by their first LSN and deleted once the store has applied them.

use footfall_core::Event;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use tokio::sync::oneshot;

const HEADER: usize = 16;
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// How often an idle log thread looks for segments it can delete.
const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);
/// Upper bound on one record (a 16 MiB bulk body enriches to somewhat more).
const MAX_RECORD: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("write-ahead log record could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("write-ahead log writer has stopped")]
    Closed,
}

/// A batch the log has made durable, to be applied to the store.
pub struct Durable {
    pub lsn: u64,
    pub events: Vec<Event>,
}

struct Request {
    events: Vec<Event>,
    done: oneshot::Sender<Result<u64, String>>,
}

/// Handle to the log-writer thread.
#[derive(Clone)]
pub struct Wal {
    tx: std_mpsc::Sender<Request>,
    truncate_tx: std_mpsc::Sender<u64>,
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

/// Reads every intact record of `dir` with an LSN above `after`; a torn record at the
/// end of the last segment (a crash mid-write) is cut off. Returns the records and the
/// highest LSN seen.
pub fn replay(dir: &Path, after: u64) -> Result<(Vec<Durable>, u64), WalError> {
    fs::create_dir_all(dir)?;
    let segs = segments(dir)?;
    let mut out = Vec::new();
    let mut last_lsn = after;
    let count = segs.len();
    for (i, (_, path)) in segs.iter().enumerate() {
        let mut reader = BufReader::new(File::open(path)?);
        let mut offset: u64 = 0;
        loop {
            let mut header = [0u8; HEADER];
            match reader.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.into()),
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let mut lsn_bytes = [0u8; 8];
            lsn_bytes.copy_from_slice(&header[8..16]);
            let lsn = u64::from_le_bytes(lsn_bytes);
            let mut payload = vec![0u8; len.min(MAX_RECORD)];
            let intact = len <= MAX_RECORD
                && reader.read_exact(&mut payload).is_ok()
                && crc32fast::hash(&payload) == crc;
            if !intact {
                if i + 1 == count {
                    tracing::warn!(file = %path.display(), offset, "cutting torn record at the end of the write-ahead log");
                    OpenOptions::new().write(true).open(path)?.set_len(offset)?;
                    break;
                }
                return Err(WalError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt record in {} at byte {offset}", path.display()),
                )));
            }
            offset += (HEADER + len) as u64;
            last_lsn = last_lsn.max(lsn);
            if lsn > after {
                let events: Vec<Event> = serde_json::from_slice(&payload)?;
                out.push(Durable { lsn, events });
            }
        }
    }
    Ok((out, last_lsn))
}

/// Deletes every segment: called once their records are all in the store.
pub fn remove_all(dir: &Path) -> Result<(), WalError> {
    for (_, path) in segments(dir)? {
        fs::remove_file(path)?;
    }
    Ok(())
}

impl Wal {
    /// Starts the writer thread. `next_lsn` continues after the highest LSN on disk;
    /// durable batches are handed to `applied` in LSN order.
    pub fn start(
        dir: PathBuf,
        next_lsn: u64,
        applied: tokio::sync::mpsc::UnboundedSender<Durable>,
    ) -> Result<Wal, WalError> {
        fs::create_dir_all(&dir)?;
        let (tx, rx) = std_mpsc::channel::<Request>();
        let (truncate_tx, truncate_rx) = std_mpsc::channel::<u64>();
        let mut writer = Writer::open(dir, next_lsn)?;
        std::thread::Builder::new()
            .name("footfall-wal".into())
            .spawn(move || writer.run(rx, truncate_rx, applied))?;
        Ok(Wal { tx, truncate_tx })
    }

    /// Appends one batch and waits until it is on disk. Returns its LSN.
    pub async fn append(&self, events: Vec<Event>) -> Result<u64, WalError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { events, done })
            .map_err(|_| WalError::Closed)?;
        match wait.await {
            Ok(Ok(lsn)) => Ok(lsn),
            Ok(Err(msg)) => Err(WalError::Io(io::Error::other(msg))),
            Err(_) => Err(WalError::Closed),
        }
    }

    /// Tells the log that everything up to `lsn` is in the store, so old segments can go.
    pub fn applied_up_to(&self, lsn: u64) {
        let _ = self.truncate_tx.send(lsn);
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    file_first_lsn: u64,
    file_len: u64,
    next_lsn: u64,
    buf: Vec<u8>,
}

impl Writer {
    fn open(dir: PathBuf, next_lsn: u64) -> Result<Writer, WalError> {
        // Always start a fresh segment: the previous one may have been cut after a crash.
        let path = segment_path(&dir, next_lsn);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let file_len = file.metadata()?.len();
        sync_dir(&dir)?;
        Ok(Writer {
            dir,
            file,
            file_first_lsn: next_lsn,
            file_len,
            next_lsn,
            buf: Vec::with_capacity(1 << 20),
        })
    }

    fn run(
        &mut self,
        rx: std_mpsc::Receiver<Request>,
        truncate_rx: std_mpsc::Receiver<u64>,
        applied: tokio::sync::mpsc::UnboundedSender<Durable>,
    ) {
        let mut applied_lsn = 0;
        loop {
            let first = match rx.recv_timeout(IDLE_TICK) {
                Ok(first) => first,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    applied_lsn = applied_lsn.max(truncate_rx.try_iter().max().unwrap_or(0));
                    if let Err(e) = self.retire_if_applied(applied_lsn) {
                        tracing::warn!(error = %e, "could not remove applied log segments");
                    }
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            // Group commit: everything that queued while the last fsync ran goes together.
            while group.len() < 4096 {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            let result = self.write_group(&group);
            match result {
                Ok(first_lsn) => {
                    for (i, req) in group.into_iter().enumerate() {
                        let lsn = first_lsn + i as u64;
                        let _ = req.done.send(Ok(lsn));
                        let _ = applied.send(Durable {
                            lsn,
                            events: req.events,
                        });
                    }
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

    fn write_group(&mut self, group: &[Request]) -> Result<u64, WalError> {
        if self.file_len >= SEGMENT_BYTES {
            self.roll()?;
        }
        self.buf.clear();
        let first_lsn = self.next_lsn;
        for (i, req) in group.iter().enumerate() {
            let payload = serde_json::to_vec(&req.events)?;
            self.buf
                .extend_from_slice(&(payload.len() as u32).to_le_bytes());
            self.buf
                .extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            self.buf
                .extend_from_slice(&(first_lsn + i as u64).to_le_bytes());
            self.buf.extend_from_slice(&payload);
        }
        if let Err(e) = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data())
        {
            // A partial write must not be followed by good records: cut back and retry later.
            let _ = self.file.set_len(self.file_len);
            let _ = self.file.seek(SeekFrom::End(0));
            return Err(e.into());
        }
        self.file_len += self.buf.len() as u64;
        self.next_lsn += group.len() as u64;
        Ok(first_lsn)
    }

    fn roll(&mut self) -> Result<(), WalError> {
        let path = segment_path(&self.dir, self.next_lsn);
        self.file = OpenOptions::new().create(true).append(true).open(path)?;
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

    fn event(n: u64) -> Event {
        Event {
            event_id: n,
            name: "pageview".into(),
            ..Event::default()
        }
    }

    #[tokio::test]
    async fn an_idle_log_deletes_what_the_store_has() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let wal = Wal::start(dir.path().to_path_buf(), 1, tx).expect("start");
        let lsn = wal.append(vec![event(1)]).await.expect("append");
        wal.applied_up_to(lsn);
        tokio::time::sleep(IDLE_TICK * 3).await;
        let bytes: u64 = segments(dir.path())
            .expect("segments")
            .iter()
            .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        assert_eq!(bytes, 0, "applied records should be gone");
        assert_eq!(wal.append(vec![event(2)]).await.expect("append"), lsn + 1);
    }

    #[tokio::test]
    async fn records_survive_reopen_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let wal = Wal::start(dir.path().to_path_buf(), 1, tx).expect("start");
        assert_eq!(
            wal.append(vec![event(1), event(2)]).await.expect("append"),
            1
        );
        assert_eq!(wal.append(vec![event(3)]).await.expect("append"), 2);
        assert_eq!(rx.recv().await.map(|d| d.lsn), Some(1));
        drop(wal);

        // Simulate a crash in the middle of a record.
        let (_, last) = segments(dir.path())
            .expect("segments")
            .pop()
            .expect("one segment");
        let mut f = OpenOptions::new().append(true).open(&last).expect("open");
        f.write_all(&[200, 0, 0, 0, 1, 2]).expect("write");

        let (records, last_lsn) = replay(dir.path(), 0).expect("replay");
        assert_eq!(last_lsn, 2);
        let ids: Vec<u64> = records
            .iter()
            .flat_map(|r| r.events.iter().map(|e| e.event_id))
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        let (after_one, _) = replay(dir.path(), 1).expect("replay");
        assert_eq!(after_one.len(), 1);
    }
}

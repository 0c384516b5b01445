//! The write path up to the acknowledgement: WAL append with group commit, then the rows
//! become queryable in memory, then the caller is acknowledged.
//!
//! One OS thread owns the open WAL segment. Callers encode their rows (in parallel, on their own
//! tasks) and hand the framed bytes to that thread; it writes everything that is waiting, fsyncs
//! once for the whole group, moves the rows into the in-memory buffer and only then answers each
//! caller. Rotating to a new segment is an operation of the same thread, so "this generation of
//! buffered rows" and "these WAL segments" always describe the same set of writes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use tokio::sync::oneshot;

use crate::catalog::ParquetFile;
use crate::error::{Result, StoreError};
use crate::schema::Table;
use crate::wal::{self, SegmentWriter, WalEntry};

/// Rows of one table for one project.
pub type PartitionKey = (Table, String);

/// Buffered rows that were cut off from new writes at a WAL rotation and are being persisted.
#[derive(Debug)]
pub struct Generation {
    pub id: u64,
    /// Every WAL segment up to this one is fully contained in this and earlier generations.
    pub through_segment: u64,
    pub batches: BTreeMap<PartitionKey, Vec<RecordBatch>>,
    pub bytes: usize,
}

/// What a query sees of one table for one project: persisted files and buffered rows, taken
/// under one lock so a row is never in both or neither.
#[derive(Debug, Default, Clone)]
pub struct TableSnapshot {
    pub files: Vec<Arc<ParquetFile>>,
    pub batches: Vec<RecordBatch>,
}

#[derive(Default)]
struct State {
    active: BTreeMap<PartitionKey, Vec<RecordBatch>>,
    active_bytes: usize,
    active_since: Option<Instant>,
    /// Bytes handed to the WAL thread and not yet applied.
    queued_bytes: usize,
    persisting: Vec<Arc<Generation>>,
    persisting_bytes: usize,
    files: Vec<Arc<ParquetFile>>,
    next_generation: u64,
    /// Stamps of writes accepted but not yet queryable, with how many writes hold each.
    in_flight: BTreeMap<i64, usize>,
    last_stamp: i64,
    /// Size of the most recent write: what [`WriteBuffer::admit`] expects the next one to add.
    last_write_bytes: usize,
}

impl State {
    fn buffered_bytes(&self) -> usize {
        self.active_bytes + self.persisting_bytes + self.queued_bytes
    }

    fn insert(&mut self, key: PartitionKey, batch: RecordBatch, bytes: usize) {
        self.active_bytes += bytes;
        self.active_since.get_or_insert_with(Instant::now);
        self.active.entry(key).or_default().push(batch);
    }
}

/// Limits of the write buffer.
#[derive(Debug, Clone)]
pub struct BufferLimits {
    /// Writes are refused (overload, retry later) while this many bytes wait for a flush.
    pub max_buffered_bytes: usize,
    /// The flusher is woken as soon as this many bytes are buffered.
    pub flush_bytes: usize,
    /// How long [`WriteBuffer::admit`] holds a write at the door, waiting for a flush to make
    /// room, before it refuses it.
    pub admission_wait: Duration,
}

enum Op {
    Append {
        framed: Vec<u8>,
        key: PartitionKey,
        batch: RecordBatch,
        bytes: usize,
        ack: oneshot::Sender<Result<()>>,
    },
    Rotate {
        ack: oneshot::Sender<Result<Option<Arc<Generation>>>>,
    },
}

/// Handle to the write path. Cheap to clone.
#[derive(Clone)]
pub struct WriteBuffer {
    state: Arc<Mutex<State>>,
    flush_wanted: Arc<tokio::sync::Notify>,
    /// Woken whenever a flush frees buffered bytes, for writes waiting for room (see
    /// [`WriteBuffer::admit`] and [`WriteBuffer::write`]).
    room_freed: Arc<tokio::sync::Notify>,
    tx: mpsc::Sender<Op>,
    limits: BufferLimits,
    wal_dir: PathBuf,
}

impl std::fmt::Debug for WriteBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBuffer")
            .field("wal_dir", &self.wal_dir)
            .finish()
    }
}

impl WriteBuffer {
    /// Replays the WAL segments after `flushed_through` into memory and starts the writer.
    pub fn open(
        wal_dir: PathBuf,
        flushed_through: u64,
        files: Vec<ParquetFile>,
        limits: BufferLimits,
    ) -> Result<(WriteBuffer, ReplayStats)> {
        std::fs::create_dir_all(&wal_dir)?;
        let mut state = State {
            files: files.into_iter().map(Arc::new).collect(),
            ..Default::default()
        };
        let mut stats = ReplayStats::default();
        let segments = wal::list_segments(&wal_dir)?;
        let last = segments.last().copied().unwrap_or(0);
        for &seq in &segments {
            if seq <= flushed_through {
                continue;
            }
            let (payloads, torn) = wal::read_segment(&wal::segment_path(&wal_dir, seq))?;
            if torn {
                tracing::warn!(
                    segment = seq,
                    "WAL segment ends in a torn record; it was never acknowledged and is skipped"
                );
            }
            for p in payloads {
                let e = WalEntry::decode(&p)?;
                stats.rows += e.batch.num_rows();
                stats.records += 1;
                // The decoded columns are slices of one buffer about the payload's size, which
                // `get_array_memory_size` would count once per column: a replay then looked
                // hundreds of times its size and held every new write until it was flushed.
                let bytes = p.len();
                state.insert((e.table, e.project), e.batch, bytes);
            }
            stats.segments += 1;
        }
        wal::delete_through(&wal_dir, flushed_through)?;
        let writer = SegmentWriter::create(&wal_dir, last.max(flushed_through) + 1)?;
        tracing::debug!(
            flushed_through,
            segments = ?segments,
            replayed_rows = stats.rows,
            writing_segment = writer.seq(),
            "opened the write-ahead log"
        );
        let state = Arc::new(Mutex::new(state));
        let flush_wanted = Arc::new(tokio::sync::Notify::new());
        let (tx, rx) = mpsc::channel();
        let (thread_state, thread_notify, flush_bytes) =
            (state.clone(), flush_wanted.clone(), limits.flush_bytes);
        std::thread::Builder::new()
            .name("plumb-wal".into())
            .spawn(move || wal_thread(writer, rx, thread_state, thread_notify, flush_bytes))?;
        Ok((
            WriteBuffer {
                state,
                flush_wanted,
                room_freed: Arc::new(tokio::sync::Notify::new()),
                tx,
                limits,
                wal_dir,
            },
            stats,
        ))
    }

    /// Durably appends rows and makes them queryable. Returns once the WAL is fsync'd.
    pub async fn write(&self, table: Table, project: &str, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let bytes = batch.get_array_memory_size();
        // Normally admitted already; this waits only when writes admitted together overfill the
        // buffer, so that they are held rather than refused after all the work of decoding.
        let max = self.limits.max_buffered_bytes;
        let stamp = self
            .when_room(|s| {
                s.last_write_bytes = bytes;
                if s.buffered_bytes() + bytes > max {
                    return Err(bytes > max);
                }
                s.queued_bytes += bytes;
                let stamp = (now_unix_nanos()).max(s.last_stamp + 1);
                s.last_stamp = stamp;
                *s.in_flight.entry(stamp).or_default() += 1;
                Ok(stamp)
            })
            .await?;
        let _in_flight = InFlight {
            state: &self.state,
            stamp,
        };
        let batch = match table.observed_time_column() {
            Some(column) => match stamp_column(batch, column, stamp) {
                Ok(b) => b,
                Err(e) => {
                    self.state.lock().expect("buffer lock").queued_bytes -= bytes;
                    return Err(e);
                }
            },
            None => batch,
        };
        let entry = WalEntry {
            table,
            project: project.to_string(),
            batch,
        };
        let encoded = entry.encode_record();
        let unqueue = |bytes| {
            self.state.lock().expect("buffer lock").queued_bytes -= bytes;
        };
        let framed = match encoded {
            Ok(f) => f,
            Err(e) => {
                unqueue(bytes);
                return Err(e);
            }
        };
        let (ack, rx) = oneshot::channel();
        let op = Op::Append {
            framed,
            key: (entry.table, entry.project),
            batch: entry.batch,
            bytes,
            ack,
        };
        if self.tx.send(op).is_err() {
            unqueue(bytes);
            return Err(StoreError::ShuttingDown);
        }
        rx.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Lets a write of the usual size in once it fits in the buffer, waiting up to
    /// [`BufferLimits::admission_wait`] for a flush to make room; refuses it after that, or at
    /// once if it could never fit. Called before a request is read and decoded: a request held
    /// here costs its client nothing but time (HTTP/2 flow control and TCP hold its body back),
    /// while a refused one is sent again in full, and under sustained load those re-sent bodies
    /// took the CPU the flush needed to catch up. [`WriteBuffer::write`] checks the real size
    /// again, and waits the same way.
    pub async fn admit(&self) -> Result<()> {
        let max = self.limits.max_buffered_bytes;
        self.when_room(|s| {
            if s.buffered_bytes() + s.last_write_bytes > max {
                return Err(s.last_write_bytes > max);
            }
            Ok(())
        })
        .await
    }

    /// Runs `attempt` under the state lock until it finds room, waiting for flushes to free
    /// some for at most [`BufferLimits::admission_wait`]. `attempt` answers `Err(never_fits)`
    /// when there is no room now, and whether there never could be.
    async fn when_room<T>(
        &self,
        mut attempt: impl FnMut(&mut State) -> std::result::Result<T, bool>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + self.limits.admission_wait;
        loop {
            let room = self.room_freed.notified();
            tokio::pin!(room);
            // Registered before the check, so a flush that completes in between still wakes us.
            room.as_mut().enable();
            {
                let mut s = self.state.lock().expect("buffer lock");
                match attempt(&mut s) {
                    Ok(v) => return Ok(v),
                    Err(never_fits) => {
                        if never_fits || tokio::time::Instant::now() >= deadline {
                            return Err(overloaded(s.buffered_bytes()));
                        }
                    }
                }
            }
            let _ = tokio::time::timeout_at(deadline, room).await;
        }
    }

    /// Starts a new WAL segment and turns the buffered rows into a generation to persist.
    /// Returns `None` when nothing is buffered.
    pub async fn rotate(&self) -> Result<Option<Arc<Generation>>> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Op::Rotate { ack })
            .map_err(|_| StoreError::ShuttingDown)?;
        rx.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Generations waiting to be persisted, oldest first.
    pub fn persisting(&self) -> Vec<Arc<Generation>> {
        self.state.lock().expect("buffer lock").persisting.clone()
    }

    /// Makes a persisted generation's files visible and drops its rows from memory, in one step
    /// for readers. Call after the catalog commit.
    pub fn complete(&self, generation: u64, files: Vec<ParquetFile>) {
        self.finish(generation, |known| {
            known.extend(files.into_iter().map(Arc::new))
        });
    }

    /// Like [`WriteBuffer::complete`], for a generation that an earlier attempt committed: the
    /// persisted files become the catalog's list (`catalog_files`), which holds that attempt's.
    pub fn complete_from_catalog(&self, generation: u64, catalog_files: Vec<ParquetFile>) {
        self.finish(generation, |known| {
            *known = catalog_files.into_iter().map(Arc::new).collect()
        });
    }

    fn finish(&self, generation: u64, update_files: impl FnOnce(&mut Vec<Arc<ParquetFile>>)) {
        let mut s = self.state.lock().expect("buffer lock");
        update_files(&mut s.files);
        if let Some(pos) = s.persisting.iter().position(|g| g.id == generation) {
            let g = s.persisting.remove(pos);
            s.persisting_bytes -= g.bytes;
        }
        drop(s);
        self.room_freed.notify_waiters();
    }

    /// Replaces the description of a persisted file (same path), e.g. once its trace-id filter
    /// is known. The file's rows do not change, so readers see them exactly once either way.
    pub fn update_file(&self, file: ParquetFile) {
        let mut s = self.state.lock().expect("buffer lock");
        if let Some(slot) = s.files.iter_mut().find(|f| f.path == file.path) {
            *slot = Arc::new(file);
        }
    }

    /// Persisted files, in commit order.
    pub fn files(&self) -> Vec<Arc<ParquetFile>> {
        self.state.lock().expect("buffer lock").files.clone()
    }

    /// Deletes WAL segments whose rows are all persisted.
    pub fn truncate_wal(&self, through_segment: u64) -> Result<()> {
        wal::delete_through(&self.wal_dir, through_segment)
    }

    pub fn snapshot(&self, table: Table, project: &str) -> TableSnapshot {
        let s = self.state.lock().expect("buffer lock");
        let key = (table, project.to_string());
        let mut batches = Vec::new();
        for g in &s.persisting {
            if let Some(b) = g.batches.get(&key) {
                batches.extend(b.iter().cloned());
            }
        }
        if let Some(b) = s.active.get(&key) {
            batches.extend(b.iter().cloned());
        }
        let files = s
            .files
            .iter()
            .filter(|f| f.table == table && f.project == project)
            .cloned()
            .collect();
        TableSnapshot { files, batches }
    }

    /// Every row written at or before this time (Unix nanoseconds, the clock that stamps
    /// `observed_time`) is queryable: later stamps may still be on their way through the WAL.
    /// Followers of new rows read up to here and never skip one that lands late.
    pub fn visible_through(&self) -> i64 {
        let s = self.state.lock().expect("buffer lock");
        match s.in_flight.keys().next() {
            Some(oldest) => oldest - 1,
            None => now_unix_nanos().max(s.last_stamp),
        }
    }

    /// Projects with rows of `table`, buffered or persisted.
    pub fn projects(&self, table: Table) -> Vec<String> {
        let s = self.state.lock().expect("buffer lock");
        let mut out: std::collections::BTreeSet<String> = s
            .files
            .iter()
            .filter(|f| f.table == table)
            .map(|f| f.project.clone())
            .collect();
        let buffered = s
            .persisting
            .iter()
            .flat_map(|g| g.batches.keys())
            .chain(s.active.keys());
        out.extend(buffered.filter(|k| k.0 == table).map(|k| k.1.clone()));
        out.into_iter().collect()
    }

    /// Resolves when enough rows are buffered that a flush should start now.
    pub async fn flush_wanted(&self) {
        self.flush_wanted.notified().await
    }

    /// Bytes buffered and not yet rotated, and how long the oldest of them has waited.
    pub fn active_size(&self) -> (usize, Option<Duration>) {
        let s = self.state.lock().expect("buffer lock");
        (s.active_bytes, s.active_since.map(|t| t.elapsed()))
    }
}

fn overloaded(buffered_bytes: usize) -> StoreError {
    StoreError::Overloaded {
        buffered_bytes,
        retry_after: Duration::from_secs(1),
    }
}

fn now_unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Removes a write's stamp from the in-flight set however the write ends.
struct InFlight<'a> {
    state: &'a Mutex<State>,
    stamp: i64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut s = self.state.lock().expect("buffer lock");
        if let Some(n) = s.in_flight.get_mut(&self.stamp) {
            *n -= 1;
            if *n == 0 {
                s.in_flight.remove(&self.stamp);
            }
        }
    }
}

/// Sets every row's `column` to the write's stamp (the time Plumb accepted it).
fn stamp_column(batch: RecordBatch, column: &str, stamp: i64) -> Result<RecordBatch> {
    let schema = batch.schema();
    let Ok(idx) = schema.index_of(column) else {
        return Ok(batch);
    };
    let stamps = arrow::array::TimestampNanosecondArray::from(vec![stamp; batch.num_rows()])
        .with_timezone("UTC");
    let mut columns = batch.columns().to_vec();
    columns[idx] = Arc::new(stamps);
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    pub segments: usize,
    pub records: usize,
    pub rows: usize,
}

struct Pending {
    key: PartitionKey,
    batch: RecordBatch,
    bytes: usize,
    ack: oneshot::Sender<Result<()>>,
}

const MAX_GROUP: usize = 4096;

/// The WAL thread's open segment, and whether it can still be appended to.
struct Log {
    segment: SegmentWriter,
    /// A write or sync of this segment failed, so a torn record may sit in it. Replay stops at
    /// a torn record, so an acknowledged record after it would be lost: the next append starts
    /// a new segment instead.
    broken: bool,
}

impl Log {
    /// The segment to append to, a new one if the current one is broken.
    fn usable(&mut self) -> Result<&mut SegmentWriter> {
        if self.broken {
            let abandoned = self.segment.seq();
            self.segment.abandon()?;
            self.broken = false;
            tracing::warn!(
                abandoned,
                next = self.segment.seq(),
                "a WAL write failed; continuing in a new segment"
            );
        }
        Ok(&mut self.segment)
    }
}

fn wal_thread(
    writer: SegmentWriter,
    rx: mpsc::Receiver<Op>,
    state: Arc<Mutex<State>>,
    flush_wanted: Arc<tokio::sync::Notify>,
    flush_bytes: usize,
) {
    let mut log = Log {
        segment: writer,
        broken: false,
    };
    let mut group: Vec<Pending> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(op) = next.take() {
            taken += 1;
            match op {
                Op::Append {
                    framed,
                    key,
                    batch,
                    bytes,
                    ack,
                } => {
                    let pending = Pending {
                        key,
                        batch,
                        bytes,
                        ack,
                    };
                    match log.usable().and_then(|segment| segment.append(&framed)) {
                        Ok(()) => group.push(pending),
                        Err(e) => {
                            log.broken = true;
                            // The group's earlier records are not durable yet, and what of them
                            // reached the file sits before the torn one: they fail with it.
                            group.push(pending);
                            fail(&mut group, &state, &format!("WAL write failed: {e}"));
                        }
                    }
                }
                Op::Rotate { ack } => {
                    commit_group(&mut log, &mut group, &state);
                    let rotated = log.usable().and_then(|segment| rotate(segment, &state));
                    let _ = ack.send(rotated);
                }
            }
            if taken < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        commit_group(&mut log, &mut group, &state);
        if state.lock().expect("buffer lock").active_bytes >= flush_bytes {
            flush_wanted.notify_one();
        }
    }
    // All senders are gone: make whatever was appended durable before the thread ends.
    if !log.broken {
        let _ = log.segment.sync();
    }
}

fn commit_group(log: &mut Log, group: &mut Vec<Pending>, state: &Mutex<State>) {
    if group.is_empty() {
        return;
    }
    if let Err(e) = log.segment.sync() {
        // After a failed fsync the kernel may have dropped the unwritten pages and a later
        // fsync can succeed without them: nothing more goes into this segment.
        log.broken = true;
        fail(group, state, &format!("WAL fsync failed: {e}"));
        return;
    }
    let mut s = state.lock().expect("buffer lock");
    let mut acks = Vec::with_capacity(group.len());
    for p in group.drain(..) {
        s.queued_bytes -= p.bytes;
        s.insert(p.key, p.batch, p.bytes);
        acks.push(p.ack);
    }
    drop(s);
    for ack in acks {
        let _ = ack.send(Ok(()));
    }
}

/// Answers every write of `group` with an error: none of them becomes queryable.
fn fail(group: &mut Vec<Pending>, state: &Mutex<State>, why: &str) {
    let mut s = state.lock().expect("buffer lock");
    let acks: Vec<_> = group
        .drain(..)
        .map(|p| {
            s.queued_bytes -= p.bytes;
            p.ack
        })
        .collect();
    drop(s);
    for ack in acks {
        let _ = ack.send(Err(StoreError::Io(std::io::Error::other(why.to_string()))));
    }
}

fn rotate(writer: &mut SegmentWriter, state: &Mutex<State>) -> Result<Option<Arc<Generation>>> {
    let mut s = state.lock().expect("buffer lock");
    if s.active.is_empty() {
        return Ok(None);
    }
    // Rotate while holding the lock so no append can land between the cut and the new segment.
    let through_segment = writer.rotate()?;
    let id = s.next_generation;
    s.next_generation += 1;
    let generation = Arc::new(Generation {
        id,
        through_segment,
        batches: std::mem::take(&mut s.active),
        bytes: std::mem::take(&mut s.active_bytes),
    });
    s.active_since = None;
    s.persisting_bytes += generation.bytes;
    s.persisting.push(generation.clone());
    Ok(Some(generation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{logs_batch, LogRecord};

    fn batch(n: usize) -> RecordBatch {
        let rows: Vec<LogRecord> = (0..n)
            .map(|i| LogRecord {
                project: "p".into(),
                time_unix_nano: i as i64,
                service_name: "s".into(),
                ..Default::default()
            })
            .collect();
        logs_batch(&rows).unwrap()
    }

    fn limits() -> BufferLimits {
        BufferLimits {
            max_buffered_bytes: 64 << 20,
            flush_bytes: 32 << 20,
            admission_wait: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn acknowledged_writes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (wb, _) = WriteBuffer::open(dir.path().into(), 0, vec![], limits()).unwrap();
        let writes: Vec<_> = (1..=20)
            .map(|n| wb.write(Table::Logs, "p", batch(n)))
            .collect();
        for w in futures::future::join_all(writes).await {
            w.unwrap();
        }
        assert_eq!(
            wb.snapshot(Table::Logs, "p")
                .batches
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>(),
            210
        );
        drop(wb);
        let (wb, stats) = WriteBuffer::open(dir.path().into(), 0, vec![], limits()).unwrap();
        assert_eq!(stats.rows, 210);
        assert_eq!(wb.snapshot(Table::Logs, "p").batches.len(), 20);
        assert!(wb.snapshot(Table::Logs, "other").batches.is_empty());
    }

    #[tokio::test]
    async fn a_failed_wal_write_never_hides_later_acknowledged_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (wb, _) = WriteBuffer::open(dir.path().into(), 0, vec![], limits()).unwrap();
        wb.write(Table::Logs, "p", batch(1)).await.unwrap();
        wal::faults::tear_next_append(dir.path());
        assert!(wb.write(Table::Logs, "p", batch(2)).await.is_err());
        wb.write(Table::Logs, "p", batch(3)).await.unwrap();
        let rows = |wb: &WriteBuffer| {
            let batches = wb.snapshot(Table::Logs, "p").batches;
            batches.iter().map(|b| b.num_rows()).sum::<usize>()
        };
        assert_eq!(rows(&wb), 4, "only the acknowledged writes are queryable");
        drop(wb);
        // Replay stops at the torn record; the write acknowledged after it must not be behind it.
        let (wb, stats) = WriteBuffer::open(dir.path().into(), 0, vec![], limits()).unwrap();
        assert_eq!(stats.rows, 4);
        assert_eq!(rows(&wb), 4);
    }

    #[tokio::test]
    async fn rotation_moves_rows_to_a_generation_and_checkpoint_skips_them() {
        let dir = tempfile::tempdir().unwrap();
        let (wb, _) = WriteBuffer::open(dir.path().into(), 0, vec![], limits()).unwrap();
        wb.write(Table::Logs, "p", batch(3)).await.unwrap();
        let g = wb.rotate().await.unwrap().expect("rows were buffered");
        assert!(wb.rotate().await.unwrap().is_none());
        wb.write(Table::Logs, "p", batch(2)).await.unwrap();
        // Still visible while persisting.
        assert_eq!(wb.snapshot(Table::Logs, "p").batches.len(), 2);
        wb.complete(g.id, vec![]);
        assert_eq!(wb.snapshot(Table::Logs, "p").batches.len(), 1);
        drop(wb);
        let (_, stats) =
            WriteBuffer::open(dir.path().into(), g.through_segment, vec![], limits()).unwrap();
        assert_eq!(stats.rows, 2);
    }

    /// A buffer with room for one `batch(10)` but not two, that holds one, and no flush by size.
    async fn full_buffer(dir: &std::path::Path, admission_wait: Duration) -> WriteBuffer {
        let size = batch(10).get_array_memory_size();
        let limits = BufferLimits {
            max_buffered_bytes: size + size / 2,
            flush_bytes: usize::MAX,
            admission_wait,
        };
        let (wb, _) = WriteBuffer::open(dir.into(), 0, vec![], limits).unwrap();
        wb.admit().await.unwrap();
        wb.write(Table::Logs, "p", batch(10)).await.unwrap();
        wb
    }

    #[tokio::test]
    async fn admission_waits_for_a_flush_to_make_room() {
        let dir = tempfile::tempdir().unwrap();
        let wb = full_buffer(dir.path(), Duration::from_secs(600)).await;
        // The test runtime has one thread: the spawned admission runs only when this task
        // yields, so "not finished" below means it is parked, not that it is slow.
        let waiting = tokio::spawn({
            let wb = wb.clone();
            async move { wb.admit().await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "admitted although the buffer is full"
        );
        let g = wb.rotate().await.unwrap().expect("rows were buffered");
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "admitted before the flush completed"
        );
        wb.complete(g.id, vec![]);
        tokio::task::yield_now().await;
        assert!(
            waiting.is_finished(),
            "still waiting after the flush made room"
        );
        waiting.await.unwrap().unwrap();
        wb.write(Table::Logs, "p", batch(10)).await.unwrap();
    }

    #[tokio::test]
    async fn writes_that_would_overfill_the_buffer_wait_for_room() {
        let dir = tempfile::tempdir().unwrap();
        let wb = full_buffer(dir.path(), Duration::from_secs(60)).await;
        // Admitted together with the first, as concurrent requests are.
        let second = tokio::spawn({
            let wb = wb.clone();
            async move { wb.write(Table::Logs, "p", batch(10)).await }
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "written although the buffer is full");
        let g = wb.rotate().await.unwrap().expect("rows were buffered");
        wb.complete(g.id, vec![]);
        second.await.unwrap().unwrap();
        assert_eq!(wb.snapshot(Table::Logs, "p").batches.len(), 1);
    }

    #[tokio::test]
    async fn admission_refuses_when_no_room_comes_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let wb = full_buffer(dir.path(), Duration::from_millis(1)).await;
        match wb.admit().await {
            Err(StoreError::Overloaded { buffered_bytes, .. }) => {
                assert_eq!(buffered_bytes, batch(10).get_array_memory_size())
            }
            other => panic!("expected overload, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn overload_is_refused_with_retry_hint() {
        let dir = tempfile::tempdir().unwrap();
        let (wb, _) = WriteBuffer::open(
            dir.path().into(),
            0,
            vec![],
            BufferLimits {
                max_buffered_bytes: 1,
                flush_bytes: 1,
                admission_wait: Duration::from_secs(60),
            },
        )
        .unwrap();
        match wb.write(Table::Logs, "p", batch(10)).await {
            Err(StoreError::Overloaded { retry_after, .. }) => {
                assert!(retry_after > Duration::ZERO)
            }
            other => panic!("expected overload, got {other:?}"),
        }
        // A write that can never fit is refused at the door at once, whatever the wait.
        assert!(matches!(
            wb.admit().await,
            Err(StoreError::Overloaded { .. })
        ));
    }
}

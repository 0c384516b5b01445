//! Write-ahead log: the durable record of every acknowledged write that is not yet in Parquet.
//!
//! A log is a directory of numbered segment files. Each record is
//! `[len: u32 LE][crc32: u32 LE][payload]`, and a payload is one table's rows for one project
//! as an Arrow IPC stream. Segments are only appended to and fsync'd by the single writer in
//! `write_buffer`; a flush starts a new segment and deletes the old ones once their rows are in
//! the catalog. On start-up, segments newer than the catalog's checkpoint are replayed. A torn
//! record (a crash mid-write, or a write that failed, never acknowledged) ends replay of its
//! segment, so nothing is ever appended after one: a failed write or fsync makes the writer
//! leave its segment and go on in a new one.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

use crate::error::{Result, StoreError};
use crate::schema::Table;

const HEADER_LEN: usize = 8;
/// Upper bound of one record, so a corrupt length can never make replay allocate gigabytes.
const MAX_RECORD_LEN: usize = 1 << 30;

/// One logical write: rows of one table for one project.
#[derive(Debug, Clone)]
pub struct WalEntry {
    pub table: Table,
    pub project: String,
    pub batch: RecordBatch,
}

impl WalEntry {
    /// Serializes the entry into a complete, framed record (done by the caller's task, not the
    /// writer, so that encoding runs in parallel and the writer only does I/O). The header is
    /// filled in last, so the payload is never copied.
    pub fn encode_record(&self) -> Result<Vec<u8>> {
        // The batch's buffers are sized exactly (see `records`), so its IPC form is about as
        // large, plus the schema and padding: one allocation, no regrowth.
        let mut out = Vec::with_capacity(self.batch.get_array_memory_size() + 16 * 1024);
        out.extend_from_slice(&[0u8; HEADER_LEN]);
        out.push(self.table.tag());
        let p = self.project.as_bytes();
        out.extend_from_slice(&(p.len() as u16).to_le_bytes());
        out.extend_from_slice(p);
        let mut w = StreamWriter::try_new(&mut out, &self.batch.schema())?;
        w.write(&self.batch)?;
        w.finish()?;
        drop(w);
        let payload_len = (out.len() - HEADER_LEN) as u32;
        let crc = crc32fast::hash(&out[HEADER_LEN..]);
        out[0..4].copy_from_slice(&payload_len.to_le_bytes());
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    pub fn decode(payload: &[u8]) -> Result<WalEntry> {
        let corrupt = |why: &str| StoreError::Corrupt(format!("WAL record: {why}"));
        if payload.len() < 3 {
            return Err(corrupt("too short"));
        }
        let table = Table::from_tag(payload[0]).ok_or_else(|| corrupt("unknown table tag"))?;
        let plen = u16::from_le_bytes([payload[1], payload[2]]) as usize;
        let project =
            std::str::from_utf8(payload.get(3..3 + plen).ok_or_else(|| corrupt("project"))?)
                .map_err(|_| corrupt("project is not UTF-8"))?
                .to_string();
        let reader = StreamReader::try_new(&payload[3 + plen..], None)?;
        let mut batches = Vec::new();
        for b in reader {
            batches.push(b?);
        }
        let batch = match batches.len() {
            1 => batches.pop().expect("one batch"),
            _ => arrow::compute::concat_batches(&table.schema(), &batches)?,
        };
        Ok(WalEntry {
            table,
            project,
            batch,
        })
    }
}

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// Sequence numbers of the segments in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".wal") {
            if let Ok(seq) = stem.parse::<u64>() {
                out.push(seq);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Reads every intact record of a segment. Returns the payloads and whether the segment ended
/// in a torn or corrupt record.
pub fn read_segment(path: &Path) -> Result<(Vec<Vec<u8>>, bool)> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut payloads = Vec::new();
    loop {
        let mut header = [0u8; HEADER_LEN];
        match read_full(&mut reader, &mut header)? {
            0 => return Ok((payloads, false)),
            n if n < HEADER_LEN => return Ok((payloads, true)),
            _ => {}
        }
        let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        if len > MAX_RECORD_LEN {
            return Ok((payloads, true));
        }
        let mut payload = vec![0u8; len];
        if read_full(&mut reader, &mut payload)? < len || crc32fast::hash(&payload) != crc {
            return Ok((payloads, true));
        }
        payloads.push(payload);
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The open segment that the writer appends to.
pub struct SegmentWriter {
    dir: PathBuf,
    seq: u64,
    file: BufWriter<File>,
}

impl SegmentWriter {
    pub fn create(dir: &Path, seq: u64) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(dir, seq))?;
        // The new file's directory entry must be durable too, or a crash could lose the file.
        sync_dir(dir)?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            seq,
            file: BufWriter::with_capacity(1 << 20, file),
        })
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn append(&mut self, framed: &[u8]) -> Result<()> {
        #[cfg(test)]
        if faults::take_torn_append(&self.dir) {
            // As when the disk fills up in the middle of a record: part of it lands, then the
            // write fails.
            self.file.write_all(&framed[..framed.len() / 2])?;
            self.file.flush()?;
            return Err(std::io::Error::other("injected: no space left on device").into());
        }
        self.file.write_all(framed)?;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        Ok(())
    }

    /// Closes this segment and opens the next one.
    pub fn rotate(&mut self) -> Result<u64> {
        self.sync()?;
        let next = SegmentWriter::create(&self.dir, self.seq + 1)?;
        let old = std::mem::replace(self, next);
        Ok(old.seq)
    }

    /// Leaves this segment after a failed write or sync and opens the next one. What is still
    /// buffered for the old file is dropped, not written: it belongs to writes that failed.
    pub fn abandon(&mut self) -> Result<()> {
        let next = SegmentWriter::create(&self.dir, self.seq + 1)?;
        let old = std::mem::replace(self, next);
        let (_file, _unwritten) = old.file.into_parts();
        Ok(())
    }
}

/// Failures that tests inject into a log directory's writer.
#[cfg(test)]
pub(crate) mod faults {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static TORN_APPENDS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    /// The next append in `dir` writes half its record and fails.
    pub(crate) fn tear_next_append(dir: &Path) {
        TORN_APPENDS.lock().unwrap().push(dir.to_path_buf());
    }

    pub(super) fn take_torn_append(dir: &Path) -> bool {
        let mut torn = TORN_APPENDS.lock().unwrap();
        match torn.iter().position(|d| d == dir) {
            Some(i) => {
                torn.remove(i);
                true
            }
            None => false,
        }
    }
}

/// Deletes the segments up to and including `through`.
pub fn delete_through(dir: &Path, through: u64) -> Result<()> {
    for seq in list_segments(dir)? {
        if seq <= through {
            fs::remove_file(segment_path(dir, seq))?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{logs_batch, LogRecord};

    fn entry(n: usize) -> WalEntry {
        let rows: Vec<LogRecord> = (0..n)
            .map(|i| LogRecord {
                project: "p".into(),
                time_unix_nano: i as i64,
                service_name: "s".into(),
                body: Some(format!("line {i}")),
                ..Default::default()
            })
            .collect();
        WalEntry {
            table: Table::Logs,
            project: "p".into(),
            batch: logs_batch(&rows).unwrap(),
        }
    }

    #[test]
    fn records_round_trip_and_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 7).unwrap();
        for n in [1, 3] {
            w.append(&entry(n).encode_record().unwrap()).unwrap();
        }
        // A record cut off mid-write, as after a crash.
        let framed = entry(2).encode_record().unwrap();
        w.append(&framed[..framed.len() / 2]).unwrap();
        w.sync().unwrap();

        assert_eq!(list_segments(dir.path()).unwrap(), vec![7]);
        let (payloads, torn) = read_segment(&segment_path(dir.path(), 7)).unwrap();
        assert!(torn);
        let rows: Vec<usize> = payloads
            .iter()
            .map(|p| WalEntry::decode(p).unwrap().batch.num_rows())
            .collect();
        assert_eq!(rows, vec![1, 3]);
    }

    #[test]
    fn rotate_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 1).unwrap();
        assert_eq!(w.rotate().unwrap(), 1);
        assert_eq!(w.rotate().unwrap(), 2);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![1, 2, 3]);
        delete_through(dir.path(), 2).unwrap();
        assert_eq!(list_segments(dir.path()).unwrap(), vec![3]);
    }

    #[test]
    fn corrupt_payload_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 1).unwrap();
        let mut framed = entry(1).encode_record().unwrap();
        let last = framed.len() - 1;
        framed[last] ^= 0xff;
        w.append(&framed).unwrap();
        w.sync().unwrap();
        let (payloads, torn) = read_segment(&segment_path(dir.path(), 1)).unwrap();
        assert!(payloads.is_empty() && torn);
    }
}

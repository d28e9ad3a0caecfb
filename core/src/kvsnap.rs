//! The KV store's snapshot format, shared by every engine (the in-memory one here, kvserver's
//! on-disk one), so a snapshot taken by one installs into the other and `kvctl snapshot save`
//! files restore anywhere.
//!
//! A stream of records, written and read one at a time so neither side needs the whole state
//! in memory:
//!
//! ```text
//! magic    "raftkv-snapshot\n" (16 bytes)
//! record*  tag (1 byte) · fields, each a u32 little-endian length then that many bytes
//!   'H'  header: JSON {"index": N, "log_time": T}          (first, exactly once)
//!   'S'  session: client id · JSON of its [`Session`]      (client id order)
//!   'K'  key · value                                        (key order)
//!   'E'  end: the number of 'S' and 'K' records, as a u64 little-endian (last)
//! ```
//!
//! Equal states give equal bytes (ordered records, no timestamps of the writer). Integrity is
//! the transport's and the store's business (the checksum in a snapshot's metadata); this
//! format only refuses what cannot be a snapshot: a wrong magic, a record out of place, a
//! length past [`MAX_FIELD`], bytes after the end record, a missing end.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::raft::{Index, Millis};
use crate::state_machine::{SmError, SnapshotError};
use crate::types::ApplyResult;

/// The first bytes of every snapshot.
pub const MAGIC: &[u8; 16] = b"raftkv-snapshot\n";
/// The longest field a reader accepts (a key, a value or a session): longer means garbage.
pub const MAX_FIELD: usize = 64 * 1024 * 1024;

/// What the store remembers of a client (Raft thesis §6.3): its last applied operation, the
/// reply it got, and when it was last active, in log time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The highest seq applied for this client.
    pub last_seq: u64,
    /// The reply to that operation, returned unchanged to any retry with seq <= last_seq.
    pub last_reply: ApplyResult,
    /// The log time of the entry that last touched the session (see
    /// [`LogEntry::time`](crate::raft::LogEntry::time)).
    #[serde(default)]
    pub last_time: Millis,
}

/// The header record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The applied index the snapshot is at.
    pub index: Index,
    /// The store's log time at that index.
    pub log_time: Millis,
}

/// One record after the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A client session.
    Session(String, Session),
    /// A key and its value.
    Kv(String, String),
}

fn io_err(e: io::Error) -> SmError {
    SmError(format!("writing a snapshot: {e}"))
}

/// Writes a snapshot record by record: the header at creation, then sessions, then keys (each
/// in order), then [`finish`](Self::finish).
pub struct Encoder<W: Write> {
    w: W,
    records: u64,
}

impl<W: Write> Encoder<W> {
    /// Writes the magic and the header.
    pub fn new(mut w: W, header: Header) -> Result<Self, SmError> {
        w.write_all(MAGIC).map_err(io_err)?;
        // Two integers: serializing cannot fail.
        let h = serde_json::to_vec(&header).unwrap_or_default();
        let mut e = Encoder { w, records: 0 };
        e.record(b'H', &[&h])?;
        Ok(e)
    }

    fn record(&mut self, tag: u8, fields: &[&[u8]]) -> Result<(), SmError> {
        self.w.write_all(&[tag]).map_err(io_err)?;
        for f in fields {
            let len = u32::try_from(f.len())
                .map_err(|_| SmError(format!("a snapshot field of {} bytes", f.len())))?;
            self.w.write_all(&len.to_le_bytes()).map_err(io_err)?;
            self.w.write_all(f).map_err(io_err)?;
        }
        Ok(())
    }

    /// A client session.
    pub fn session(&mut self, client_id: &str, s: &Session) -> Result<(), SmError> {
        let json = serde_json::to_vec(s).map_err(|e| SmError(e.to_string()))?;
        self.records += 1;
        self.record(b'S', &[client_id.as_bytes(), &json])
    }

    /// A key and its value.
    pub fn kv(&mut self, key: &str, value: &str) -> Result<(), SmError> {
        self.records += 1;
        self.record(b'K', &[key.as_bytes(), value.as_bytes()])
    }

    /// Writes the end record and flushes; returns the writer.
    pub fn finish(mut self) -> Result<W, SmError> {
        let n = self.records.to_le_bytes();
        self.record(b'E', &[&n])?;
        self.w.flush().map_err(io_err)?;
        Ok(self.w)
    }
}

/// Reads a snapshot record by record, checking its shape as it goes.
pub struct Decoder<R: Read> {
    r: R,
    header: Header,
    records: u64,
    done: bool,
}

fn bad(msg: impl Into<String>) -> SnapshotError {
    SnapshotError(msg.into())
}

impl<R: Read> Decoder<R> {
    /// Reads the magic and the header.
    pub fn new(mut r: R) -> Result<Self, SnapshotError> {
        let mut magic = [0u8; 16];
        r.read_exact(&mut magic)
            .map_err(|e| bad(format!("reading the magic: {e}")))?;
        if &magic != MAGIC {
            return Err(bad("not a raftkv snapshot (wrong magic)"));
        }
        let mut d = Decoder {
            r,
            header: Header::default(),
            records: 0,
            done: false,
        };
        match d.tag()? {
            Some(b'H') => {}
            _ => return Err(bad("the first record is not the header")),
        }
        let h = d.field()?;
        d.header = serde_json::from_slice(&h).map_err(|e| bad(format!("header: {e}")))?;
        Ok(d)
    }

    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }

    fn tag(&mut self) -> Result<Option<u8>, SnapshotError> {
        let mut t = [0u8; 1];
        match self.r.read(&mut t) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(t[0])),
            Err(e) => Err(bad(format!("reading a record: {e}"))),
        }
    }

    fn field(&mut self) -> Result<Vec<u8>, SnapshotError> {
        let mut len = [0u8; 4];
        self.r
            .read_exact(&mut len)
            .map_err(|e| bad(format!("reading a field length: {e}")))?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FIELD {
            return Err(bad(format!("a field of {len} bytes")));
        }
        let mut buf = vec![0u8; len];
        self.r
            .read_exact(&mut buf)
            .map_err(|e| bad(format!("reading a field: {e}")))?;
        Ok(buf)
    }

    fn string(&mut self) -> Result<String, SnapshotError> {
        String::from_utf8(self.field()?).map_err(|_| bad("a key or value is not UTF-8"))
    }

    /// The next record; `None` after the end record (which it checks, and checks that nothing
    /// follows it).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record>, SnapshotError> {
        if self.done {
            return Ok(None);
        }
        match self.tag()? {
            Some(b'S') => {
                let id = self.string()?;
                let json = self.field()?;
                let s = serde_json::from_slice(&json).map_err(|e| bad(format!("session: {e}")))?;
                self.records += 1;
                Ok(Some(Record::Session(id, s)))
            }
            Some(b'K') => {
                let k = self.string()?;
                let v = self.string()?;
                self.records += 1;
                Ok(Some(Record::Kv(k, v)))
            }
            Some(b'E') => {
                let n = self.field()?;
                let n: [u8; 8] = n
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad("the end record is not 8 bytes"))?;
                if u64::from_le_bytes(n) != self.records {
                    return Err(bad(format!(
                        "the end record counts {} records, the snapshot has {}",
                        u64::from_le_bytes(n),
                        self.records
                    )));
                }
                if self.tag()?.is_some() {
                    return Err(bad("bytes after the end record"));
                }
                self.done = true;
                Ok(None)
            }
            Some(t) => Err(bad(format!("unknown record tag {t:#04x}"))),
            None => Err(bad("the snapshot ends without its end record")),
        }
    }

    /// Reads every remaining record (checking the whole snapshot's shape).
    pub fn check_rest(&mut self) -> Result<(), SnapshotError> {
        while self.next()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut e = Encoder::new(
            Vec::new(),
            Header {
                index: 7,
                log_time: 99,
            },
        )
        .unwrap();
        let s = Session {
            last_seq: 3,
            last_reply: ApplyResult::ok(),
            last_time: 42,
        };
        e.session("c1", &s).unwrap();
        e.kv("a", "1").unwrap();
        e.kv("b", "").unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn records_read_back_in_the_order_they_were_written() {
        let bytes = sample();
        let mut d = Decoder::new(bytes.as_slice()).unwrap();
        assert_eq!(d.header().index, 7);
        assert_eq!(d.header().log_time, 99);
        assert!(
            matches!(d.next().unwrap(), Some(Record::Session(id, s)) if id == "c1" && s.last_seq == 3)
        );
        assert_eq!(d.next().unwrap(), Some(Record::Kv("a".into(), "1".into())));
        assert_eq!(d.next().unwrap(), Some(Record::Kv("b".into(), "".into())));
        assert_eq!(d.next().unwrap(), None);
    }

    #[test]
    fn a_truncated_or_extended_or_foreign_snapshot_is_refused() {
        let bytes = sample();
        for cut in [0, 5, 16, 20, bytes.len() - 1] {
            let r = Decoder::new(&bytes[..cut]).and_then(|mut d| d.check_rest());
            assert!(r.is_err(), "cut at {cut} was accepted");
        }
        let mut longer = bytes.clone();
        longer.push(b'K');
        assert!(
            Decoder::new(longer.as_slice())
                .and_then(|mut d| d.check_rest())
                .is_err()
        );
        assert!(Decoder::new(&b"{\"kv\":{}}"[..]).is_err());
    }
}

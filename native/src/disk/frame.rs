//! Length- and checksum-framed records, the unit every file under the data dir is made of.
//!
//! A frame is `len: u32 LE | crc32(payload): u32 LE | payload (len bytes)`. The checksum is
//! CRC-32 (IEEE, as computed by `crc32fast`) over the payload only; a torn length field shows
//! up as a length that runs past the end of the file or as a checksum mismatch, so neither the
//! length nor the payload is ever trusted without the checksum.

use raftkv_core::raft::StorageError;

/// Bytes before the payload: length and checksum.
pub const HEADER_LEN: usize = 8;

/// Why a frame could not be read at some offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer than [`HEADER_LEN`] bytes remain, or the length runs past the end of the input.
    Truncated,
    /// The length is larger than the caller allows (a garbage length field).
    TooLong(usize),
    /// The payload does not match its checksum.
    Checksum,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Truncated => f.write_str("record runs past the end of the file"),
            FrameError::TooLong(n) => write!(f, "record length {n} exceeds the limit"),
            FrameError::Checksum => f.write_str("record checksum mismatch"),
        }
    }
}

/// Appends one frame holding `payload` to `out`. Fails (writing nothing) when the payload does
/// not fit the 32-bit length field.
pub fn encode_into(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), StorageError> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        StorageError::Io(format!(
            "record of {} bytes is too large (max 4 GiB)",
            payload.len()
        ))
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// A frame holding `payload`.
pub fn encode(payload: &[u8]) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    encode_into(&mut out, payload)?;
    Ok(out)
}

/// Reads the frame at the start of `buf`, accepting payloads of at most `max_len` bytes.
/// Returns the payload and the total size of the frame.
pub fn decode(buf: &[u8], max_len: usize) -> Result<(&[u8], usize), FrameError> {
    let Some((header, rest)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Truncated);
    };
    let (len_bytes, crc_bytes) = header.split_at(4);
    let len = u32::from_le_bytes(len_bytes.try_into().map_err(|_| FrameError::Truncated)?);
    let crc = u32::from_le_bytes(crc_bytes.try_into().map_err(|_| FrameError::Truncated)?);
    let len = len as usize;
    if len > max_len {
        return Err(FrameError::TooLong(len));
    }
    let payload = rest.get(..len).ok_or(FrameError::Truncated)?;
    if crc32fast::hash(payload) != crc {
        return Err(FrameError::Checksum);
    }
    Ok((payload, HEADER_LEN + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_damage() {
        let f = encode(b"hello").unwrap();
        assert_eq!(decode(&f, 100), Ok((&b"hello"[..], f.len())));
        for cut in 0..f.len() {
            assert_eq!(
                decode(&f[..cut], 100),
                Err(FrameError::Truncated),
                "cut at {cut}"
            );
        }
        let mut bad = f.clone();
        bad[HEADER_LEN + 1] ^= 0x40;
        assert_eq!(decode(&bad, 100), Err(FrameError::Checksum));
        assert_eq!(decode(&f, 4), Err(FrameError::TooLong(5)));
        assert_eq!(decode(&encode(b"").unwrap(), 0), Ok((&b""[..], HEADER_LEN)));
    }
}

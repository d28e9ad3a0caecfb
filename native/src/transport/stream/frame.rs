//! Frames on a peer stream: `[length: u32 BE][crc32: u32 BE][payload]`, where the CRC-32 covers
//! the payload and, once a connection holds a session key (a cluster secret is set), the
//! payload ends in a 32-byte HMAC-SHA256 tag over the frame's sequence number and the rest of
//! the payload. The length is checked against a limit before anything is allocated, so a peer
//! (authenticated or not) cannot make the reader reserve more than that.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes before a frame's payload.
pub const HEADER_BYTES: usize = 8;
/// Bytes of a frame's tag, when the connection has a session key.
pub const TAG_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The frame announces more bytes than this connection accepts.
    #[error("a frame of {len} bytes is over the limit of {limit}")]
    TooLong {
        /// The announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload does not match its checksum.
    #[error("a frame's checksum does not match")]
    Checksum,
    /// The payload's tag is missing or wrong: not from the authenticated peer, or altered.
    #[error("a frame's tag does not match")]
    Tag,
}

/// The per-connection key that tags every frame after the handshake (see [`super::handshake`]),
/// with the sequence number of the next frame in this direction.
pub struct SessionKey {
    key: [u8; 32],
    /// The number of frames tagged (or checked) so far; part of every tag, so a frame cannot
    /// be replayed, dropped or reordered within a connection unnoticed.
    seq: u64,
}

impl SessionKey {
    /// A key of 32 bytes, starting at sequence number 0.
    pub fn new(key: [u8; 32]) -> Self {
        SessionKey { key, seq: 0 }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts a 32-byte key"));
        mac.update(&self.seq.to_be_bytes());
        mac
    }

    /// The tag of the next frame, whose payload is `body`.
    fn tag(&mut self, body: &[u8]) -> [u8; TAG_BYTES] {
        let mut mac = self.mac();
        mac.update(body);
        self.seq += 1;
        mac.finalize().into_bytes().into()
    }

    /// Checks the tag of the next frame.
    fn verify(&mut self, body: &[u8], tag: &[u8]) -> Result<(), FrameError> {
        let mut mac = self.mac();
        mac.update(body);
        self.seq += 1;
        mac.verify_slice(tag).map_err(|_| FrameError::Tag)
    }
}

/// Writes `body` as one frame, tagged with `key` if given. Does not flush.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    body: &[u8],
    key: Option<&mut SessionKey>,
) -> std::io::Result<()> {
    let tag = key.map(|k| k.tag(body));
    let len = body.len() + tag.map_or(0, |t| t.len());
    let len = u32::try_from(len)
        .map_err(|_| std::io::Error::other(format!("a frame of {len} bytes is too long")))?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(body);
    if let Some(t) = &tag {
        crc.update(t);
    }
    let mut header = [0u8; HEADER_BYTES];
    header[..4].copy_from_slice(&len.to_be_bytes());
    header[4..].copy_from_slice(&crc.finalize().to_be_bytes());
    w.write_all(&header).await?;
    w.write_all(body).await?;
    if let Some(t) = &tag {
        w.write_all(t).await?;
    }
    Ok(())
}

/// Reads one frame of at most `limit` bytes and returns its payload (without the tag), checked
/// against its checksum and, with `key`, its tag. `Ok(None)`: the peer closed the connection
/// between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
    key: Option<&mut SessionKey>,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    match r.read_exact(&mut header[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut header[1..]).await?;
    let [a, b, c, d, e, f, g, h] = header;
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    let crc = u32::from_be_bytes([e, f, g, h]);
    let tag_len = if key.is_some() { TAG_BYTES } else { 0 };
    if len > limit.saturating_add(tag_len) {
        return Err(FrameError::TooLong { len, limit });
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    if crc32fast::hash(&payload) != crc {
        return Err(FrameError::Checksum);
    }
    if let Some(key) = key {
        let Some(split) = len.checked_sub(TAG_BYTES) else {
            return Err(FrameError::Tag);
        };
        let tag = payload.split_off(split);
        key.verify(&payload, &tag)?;
    }
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(body: &[u8], keyed: bool) -> Result<Option<Vec<u8>>, FrameError> {
        let mut buf = Vec::new();
        let mut wk = keyed.then(|| SessionKey::new([7; 32]));
        write_frame(&mut buf, body, wk.as_mut()).await.unwrap();
        let mut rk = keyed.then(|| SessionKey::new([7; 32]));
        read_frame(&mut buf.as_slice(), 1024, rk.as_mut()).await
    }

    #[tokio::test]
    async fn a_frame_reads_back_as_written_with_and_without_a_key() {
        for keyed in [false, true] {
            let got = round_trip(b"hello", keyed).await.unwrap();
            assert_eq!(got.as_deref(), Some(&b"hello"[..]));
        }
    }

    #[tokio::test]
    async fn every_flipped_byte_is_caught_by_the_checksum_or_the_length() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"payload", None).await.unwrap();
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            let got = read_frame(&mut bad.as_slice(), 1024, None).await;
            assert!(got.is_err(), "byte {i} flipped went unnoticed: {got:?}");
        }
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_refused_before_it_is_read() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &[0u8; 2000], None).await.unwrap();
        let got = read_frame(&mut &buf[..HEADER_BYTES], 1024, None).await;
        assert!(
            matches!(got, Err(FrameError::TooLong { len: 2000, .. })),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_frame_tagged_with_another_key_or_replayed_is_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"x", Some(&mut SessionKey::new([1; 32])))
            .await
            .unwrap();
        let got = read_frame(
            &mut buf.as_slice(),
            1024,
            Some(&mut SessionKey::new([2; 32])),
        )
        .await;
        assert!(matches!(got, Err(FrameError::Tag)), "{got:?}");
        // The same frame twice: the second carries the first's sequence number.
        let twice = [buf.clone(), buf].concat();
        let mut r = twice.as_slice();
        let mut key = SessionKey::new([1; 32]);
        assert!(read_frame(&mut r, 1024, Some(&mut key)).await.is_ok());
        let got = read_frame(&mut r, 1024, Some(&mut key)).await;
        assert!(matches!(got, Err(FrameError::Tag)), "{got:?}");
    }

    #[tokio::test]
    async fn a_clean_close_between_frames_is_not_an_error() {
        assert!(matches!(
            read_frame(&mut &[][..], 1024, None).await,
            Ok(None)
        ));
    }
}

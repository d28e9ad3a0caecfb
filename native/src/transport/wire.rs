//! The JSON bodies of the Raft routes: `{"from": "<node id>", "msg": <message>}`, and the
//! messages the stream transport frames in MessagePack ([`encode_batch`], [`decode_batch`]).
//!
//! `msg` is core's [`Message`] in its own serde form (`{"type": "append_entries", ...}`), except
//! that InstallSnapshot's `data` travels as a base64 string (standard alphabet, padded) instead
//! of a JSON array of numbers. The adapter lives on [`WireInstallSnapshot`], not on core's
//! struct, so core's serde form stays what the simulator and the playground see.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use raftkv_core::kvraft::{AppendEntries, Message};
use raftkv_core::raft::{
    AppendEntriesResponse, Index, InstallSnapshot, InstallSnapshotResponse, Membership,
    RequestVote, RequestVoteResponse, Term, TimeoutNow,
};
use raftkv_core::types::NodeId;
use serde::{Deserialize, Serialize};

/// Encodes messages for one stream frame: a MessagePack array of [`WireMessage`]s with named
/// fields. (A self-describing format: core's messages use internally tagged and untagged enums
/// and skipped empty fields, which formats that need a schema, such as postcard, cannot read
/// back; see docs/peer-transport.md.)
pub fn encode_batch(msgs: Vec<Message>) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let wire: Vec<WireMessage> = msgs.into_iter().map(WireMessage::from).collect();
    rmp_serde::to_vec_named(&wire)
}

/// Decodes a frame written by [`encode_batch`].
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Message>, rmp_serde::decode::Error> {
    let wire: Vec<WireMessage> = rmp_serde::from_slice(bytes)?;
    Ok(wire.into_iter().map(Message::from).collect())
}

/// One message on the wire, with its sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node.
    pub from: NodeId,
    /// The message.
    pub msg: WireMessage,
}

impl Envelope {
    /// Wraps `msg` from `from` for the wire.
    pub fn new(from: NodeId, msg: Message) -> Self {
        Envelope {
            from,
            msg: msg.into(),
        }
    }

    /// The sender and the core message.
    pub fn into_parts(self) -> (NodeId, Message) {
        (self.from, self.msg.into())
    }
}

/// [`Message`] as it travels: the same tags and fields, snapshot bytes in base64.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)] // Each variant is the core message of the same name.
pub enum WireMessage {
    RequestVote(RequestVote),
    RequestVoteResponse(RequestVoteResponse),
    AppendEntries(AppendEntries),
    AppendEntriesResponse(AppendEntriesResponse),
    InstallSnapshot(WireInstallSnapshot),
    InstallSnapshotResponse(InstallSnapshotResponse),
    TimeoutNow(TimeoutNow),
}

/// [`InstallSnapshot`] with `data` as base64.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireInstallSnapshot {
    /// The leader's term.
    pub term: Term,
    /// The leader.
    pub leader_id: NodeId,
    /// The last index the snapshot covers.
    pub last_included_index: Index,
    /// The term of that index.
    pub last_included_term: Term,
    /// The configuration at the snapshot's last index.
    #[serde(default)]
    pub membership: Membership,
    /// The whole snapshot's size (see [`InstallSnapshot::size`]).
    #[serde(default)]
    pub size: u64,
    /// CRC-32 of the whole snapshot (see [`InstallSnapshot::checksum`]).
    #[serde(default)]
    pub checksum: Option<u32>,
    /// Where this chunk starts in the snapshot.
    #[serde(default)]
    pub offset: u64,
    /// This chunk's bytes, base64 on the wire.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
    /// The last chunk (peers from before chunks sent one message: the last).
    #[serde(default = "yes")]
    pub done: bool,
}

fn yes() -> bool {
    true
}

impl From<Message> for WireMessage {
    fn from(msg: Message) -> Self {
        match msg {
            Message::RequestVote(m) => WireMessage::RequestVote(m),
            Message::RequestVoteResponse(m) => WireMessage::RequestVoteResponse(m),
            Message::AppendEntries(m) => WireMessage::AppendEntries(m),
            Message::AppendEntriesResponse(m) => WireMessage::AppendEntriesResponse(m),
            Message::InstallSnapshot(m) => WireMessage::InstallSnapshot(WireInstallSnapshot {
                term: m.term,
                leader_id: m.leader_id,
                last_included_index: m.last_included_index,
                last_included_term: m.last_included_term,
                membership: m.membership,
                size: m.size,
                checksum: m.checksum,
                offset: m.offset,
                data: m.data,
                done: m.done,
            }),
            Message::InstallSnapshotResponse(m) => WireMessage::InstallSnapshotResponse(m),
            Message::TimeoutNow(m) => WireMessage::TimeoutNow(m),
        }
    }
}

impl From<WireMessage> for Message {
    fn from(msg: WireMessage) -> Self {
        match msg {
            WireMessage::RequestVote(m) => Message::RequestVote(m),
            WireMessage::RequestVoteResponse(m) => Message::RequestVoteResponse(m),
            WireMessage::AppendEntries(m) => Message::AppendEntries(m),
            WireMessage::AppendEntriesResponse(m) => Message::AppendEntriesResponse(m),
            WireMessage::InstallSnapshot(m) => Message::InstallSnapshot(InstallSnapshot {
                term: m.term,
                leader_id: m.leader_id,
                last_included_index: m.last_included_index,
                last_included_term: m.last_included_term,
                membership: m.membership,
                size: m.size,
                checksum: m.checksum,
                offset: m.offset,
                data: m.data,
                done: m.done,
            }),
            WireMessage::InstallSnapshotResponse(m) => Message::InstallSnapshotResponse(m),
            WireMessage::TimeoutNow(m) => Message::TimeoutNow(m),
        }
    }
}

/// Serde adapter: `Vec<u8>` as a standard base64 string in human-readable formats (JSON, the
/// HTTP routes), as raw bytes in binary ones (MessagePack, the stream transport).
mod base64_bytes {
    use super::{Engine, STANDARD};
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&STANDARD.encode(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    /// Takes either form, whatever the deserializer says of itself: inside an internally
    /// tagged enum serde buffers the value and then always claims to be human-readable
    /// (serde#1919), so the form in the data decides.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(BytesOrBase64)
    }

    struct BytesOrBase64;

    impl<'de> Visitor<'de> for BytesOrBase64 {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes, or a base64 string")
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<Vec<u8>, E> {
            STANDARD
                .decode(text.as_bytes())
                .map_err(|e| E::custom(format!("data is not valid base64: {e}")))
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }
    }
}

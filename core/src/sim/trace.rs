//! The trace of a run: every message sent, delivered or dropped, role and term changes,
//! commits, applies, client operations and injected faults.
//!
//! Each event has a stable one-line text form (see [`TraceEvent`]'s `Display`); the trace's
//! text is those lines, each ending in `\n`, and its hash is FNV-1a 64 of that text. The text
//! uses no `Debug` output and no floats, so it is the same on every platform and Rust version.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::history::OpStatus;
use super::network::{DropReason, MsgId};
use super::rng::Fnv1a;
use crate::raft::{Index, Millis, Role, Term};

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceKind {
    /// A message was put on the network.
    Send {
        /// Its id.
        id: MsgId,
        /// The sender.
        from: String,
        /// The receiver.
        to: String,
        /// Its type.
        kind: String,
        /// A short summary.
        summary: String,
        /// When it will arrive.
        deliver_at: Millis,
        /// For a network-made duplicate: the original's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dup_of: Option<MsgId>,
    },
    /// A message arrived.
    Deliver {
        /// Its id.
        id: MsgId,
        /// The sender.
        from: String,
        /// The receiver.
        to: String,
        /// Its type.
        kind: String,
    },
    /// A message was dropped.
    Drop {
        /// Its id (0 when it was dropped before getting one).
        id: MsgId,
        /// The sender.
        from: String,
        /// The receiver.
        to: String,
        /// Its type.
        kind: String,
        /// Why.
        reason: DropReason,
    },
    /// A node's role or term changed.
    Role {
        /// The node.
        node: String,
        /// Its new role.
        role: Role,
        /// Its term.
        term: Term,
    },
    /// A node learnt who leads.
    Leader {
        /// The node.
        node: String,
        /// The leader it knows of.
        leader: Option<String>,
        /// The term.
        term: Term,
    },
    /// A node's commit index advanced.
    Commit {
        /// The node.
        node: String,
        /// The new commit index.
        index: Index,
    },
    /// A node applied an entry.
    Apply {
        /// The node.
        node: String,
        /// The entry's index.
        index: Index,
        /// The entry's term.
        term: Term,
    },
    /// A node's state machine was replaced by a snapshot.
    Snapshot {
        /// The node.
        node: String,
        /// The last index the snapshot covers.
        index: Index,
        /// Its term.
        term: Term,
    },
    /// A node took a snapshot of its own state machine and compacted its log up to it.
    Compact {
        /// The node.
        node: String,
        /// The last index the snapshot covers.
        index: Index,
        /// Its term.
        term: Term,
    },
    /// A client started an operation.
    Invoke {
        /// The client.
        client: String,
        /// The operation's seq.
        seq: u64,
        /// The operation, e.g. `put k1=c1-1`.
        op: String,
    },
    /// A client's operation ended.
    Complete {
        /// The client.
        client: String,
        /// The operation's seq.
        seq: u64,
        /// How it ended.
        status: OpStatus,
    },
    /// A fault was injected or healed.
    Fault {
        /// What, e.g. `kill n2` or `cut n1->n3`.
        fault: String,
    },
    /// A membership change or leadership transfer was asked of a node, or a node joined:
    /// what, and how it went.
    Conf {
        /// The node (the leader asked, or the node that joined).
        node: String,
        /// What happened, e.g. `promote n6: accepted at 14` or `transfer to n2: started`.
        what: String,
    },
    /// A configuration took effect on a node.
    Membership {
        /// The node.
        node: String,
        /// The configuration entry's index (the snapshot's, for one that came with it).
        index: Index,
        /// The configuration, e.g. `n1 n2 n4 (joint with n1 n2 n3) learners n6`.
        config: String,
    },
}

/// One event of a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Simulated time (ms).
    pub time: Millis,
    /// What happened.
    #[serde(flatten)]
    pub kind: TraceKind,
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Follower => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

fn status_name(s: OpStatus) -> &'static str {
    match s {
        OpStatus::Ok => "ok",
        OpStatus::Fail => "fail",
        OpStatus::Unknown => "unknown",
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>7} ", self.time)?;
        match &self.kind {
            TraceKind::Send {
                id,
                from,
                to,
                kind,
                summary,
                deliver_at,
                dup_of,
            } => {
                write!(f, "send #{id} {from}->{to} {kind} {summary} @{deliver_at}")?;
                if let Some(orig) = dup_of {
                    write!(f, " dup_of=#{orig}")?;
                }
                Ok(())
            }
            TraceKind::Deliver { id, from, to, kind } => {
                write!(f, "deliver #{id} {from}->{to} {kind}")
            }
            TraceKind::Drop {
                id,
                from,
                to,
                kind,
                reason,
            } => write!(f, "drop #{id} {from}->{to} {kind} {}", reason.as_str()),
            TraceKind::Role { node, role, term } => {
                write!(f, "role {node} {} t{term}", role_name(*role))
            }
            TraceKind::Leader { node, leader, term } => write!(
                f,
                "leader {node} sees {} t{term}",
                leader.as_deref().unwrap_or("none")
            ),
            TraceKind::Commit { node, index } => write!(f, "commit {node} {index}"),
            TraceKind::Apply { node, index, term } => write!(f, "apply {node} {index}/{term}"),
            TraceKind::Snapshot { node, index, term } => {
                write!(f, "snapshot {node} {index}/{term}")
            }
            TraceKind::Compact { node, index, term } => {
                write!(f, "compact {node} {index}/{term}")
            }
            TraceKind::Invoke { client, seq, op } => write!(f, "invoke {client}#{seq} {op}"),
            TraceKind::Complete {
                client,
                seq,
                status,
            } => write!(f, "complete {client}#{seq} {}", status_name(*status)),
            TraceKind::Fault { fault } => write!(f, "fault {fault}"),
            TraceKind::Conf { node, what } => write!(f, "conf {node} {what}"),
            TraceKind::Membership {
                node,
                index,
                config,
            } => write!(f, "membership {node} {index} {config}"),
        }
    }
}

/// How much of the trace a run keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceMode {
    /// Nothing: the fastest runs (a failure can be replayed with the trace on, identically,
    /// because tracing draws no randomness and changes no behaviour).
    Off,
    /// Only the running hash and the count of events.
    Hash,
    /// Every event, and the hash.
    #[default]
    Full,
}

/// A run's trace.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    mode: TraceMode,
    events: Vec<TraceEvent>,
    hash: Fnv1a,
    count: u64,
    line: String,
}

impl Trace {
    /// An empty trace that records according to `mode`.
    pub fn new(mode: TraceMode) -> Self {
        Trace {
            mode,
            ..Trace::default()
        }
    }

    /// Whether events are looked at at all (callers skip building them when not).
    pub fn enabled(&self) -> bool {
        self.mode != TraceMode::Off
    }

    /// The mode.
    pub fn mode(&self) -> TraceMode {
        self.mode
    }

    /// Records an event.
    pub fn record(&mut self, time: Millis, kind: TraceKind) {
        if self.mode == TraceMode::Off {
            return;
        }
        let ev = TraceEvent { time, kind };
        self.line.clear();
        // Writing into a String cannot fail.
        let _ = fmt::write(&mut self.line, format_args!("{ev}\n"));
        self.hash.write(self.line.as_bytes());
        self.count += 1;
        if self.mode == TraceMode::Full {
            self.events.push(ev);
        }
    }

    /// The recorded events (empty unless the mode is `Full`).
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// Hands over the events recorded since the last call and forgets them; the hash and the
    /// count still cover every event. For a long-running consumer (the playground) that reads
    /// each event once: a kept trace grows without bound.
    pub fn take_events(&mut self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.events)
    }

    /// How many events were recorded (hashed).
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no event was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// FNV-1a 64 of the trace text (0xcbf29ce484222325, the empty hash, when tracing is off).
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// The text of the recorded events, one line each.
    pub fn text(&self) -> String {
        lines(&self.events)
    }

    /// The text of the last `n` recorded events.
    pub fn tail(&self, n: usize) -> String {
        lines(&self.events[self.events.len().saturating_sub(n)..])
    }
}

fn lines(events: &[TraceEvent]) -> String {
    use fmt::Write;
    let mut s = String::new();
    for e in events {
        let _ = writeln!(s, "{e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn sample() -> Vec<(Millis, TraceKind)> {
        vec![
            (
                3,
                TraceKind::Send {
                    id: 1,
                    from: "n1".into(),
                    to: "n2".into(),
                    kind: "request_vote".into(),
                    summary: "t2 cand=n1 last=0/0".into(),
                    deliver_at: 9,
                    dup_of: None,
                },
            ),
            (
                9,
                TraceKind::Drop {
                    id: 1,
                    from: "n1".into(),
                    to: "n2".into(),
                    kind: "request_vote".into(),
                    reason: DropReason::Partitioned,
                },
            ),
            (
                10,
                TraceKind::Role {
                    node: "n1".into(),
                    role: Role::Leader,
                    term: 2,
                },
            ),
            (
                11,
                TraceKind::Complete {
                    client: "c1".into(),
                    seq: 4,
                    status: OpStatus::Unknown,
                },
            ),
        ]
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn text_form_is_stable_and_hashed() {
        let mut t = Trace::new(TraceMode::Full);
        for (time, k) in sample() {
            t.record(time, k);
        }
        let text = t.text();
        assert_eq!(
            text,
            "      3 send #1 n1->n2 request_vote t2 cand=n1 last=0/0 @9\n\
             \x20     9 drop #1 n1->n2 request_vote partitioned\n\
             \x20    10 role n1 leader t2\n\
             \x20    11 complete c1#4 unknown\n"
        );
        assert_eq!(t.hash(), Fnv1a::hash(text.as_bytes()));
        assert_eq!(t.len(), 4);
        assert_eq!(t.tail(1), "     11 complete c1#4 unknown\n");

        // Hash mode keeps the hash without the events.
        let mut h = Trace::new(TraceMode::Hash);
        for (time, k) in sample() {
            h.record(time, k);
        }
        assert_eq!(h.hash(), t.hash());
        assert!(h.events().is_empty());

        // Taking the events empties the list but keeps the hash and the count.
        let (hash, len) = (t.hash(), t.len());
        let taken = t.take_events();
        assert_eq!(taken.len() as u64, len);
        assert!(t.events().is_empty());
        assert_eq!((t.hash(), t.len()), (hash, len));

        let mut off = Trace::new(TraceMode::Off);
        off.record(1, TraceKind::Fault { fault: "x".into() });
        assert!(off.is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn events_serialize_as_flat_json() {
        let ev = TraceEvent {
            time: 10,
            kind: TraceKind::Role {
                node: "n1".into(),
                role: Role::Leader,
                term: 2,
            },
        };
        let j = serde_json::to_string(&ev).expect("serializes");
        assert_eq!(
            j,
            r#"{"time":10,"type":"role","node":"n1","role":"leader","term":2}"#
        );
        let back: TraceEvent = serde_json::from_str(&j).expect("parses");
        assert_eq!(back, ev);
    }
}

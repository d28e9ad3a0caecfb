//! From the simulator's views to the contract's [`State`]: what `Playground::state()` returns.

use std::collections::BTreeSet;

use raftkv_core::kvraft::LogEntry;
use raftkv_core::raft::{Membership, Role};
use raftkv_core::sim::cluster::{MAX_NODES, membership_summary};
use raftkv_core::sim::history::CasResult;
use raftkv_core::sim::network::{Endpoint, node_name};
use raftkv_core::sim::{ClientOp, HistoryOp, LinError, LinkConfig, OpStatus, linearizability};
use raftkv_core::{NodeId, OpType};

use raftkv_core::kvraft::Message;
use raftkv_core::sim::network::Payload;

use crate::contract::{
    FilterState, HistoryVerdict, LinkState, LogEntryState, MembershipState, MessageState, NetState,
    NodeState, OpState, PeerProgress, State,
};
use crate::session::{OpRecord, Session, doomed};

/// The whole state the page draws.
pub fn state(s: &mut Session) -> State {
    let history = verdict(s);
    let shown = s.shown_membership();
    let c = &s.cluster;
    let n = c.node_count();
    let log_len = s.opts.log_len as usize;
    let nodes = (0..n)
        .map(|i| {
            let view = c.node_view(i);
            let st = view
                .as_ref()
                .and_then(|v| v.status.clone())
                .or_else(|| s.last_status[i].clone());
            let (clock, drift_ppm) = view
                .as_ref()
                .map_or((c.now(), 0), |v| (v.clock, v.drift_ppm));
            let mut log = view.as_ref().map(|v| v.log.as_slice()).unwrap_or_default();
            if log.len() > log_len {
                log = &log[log.len() - log_len..];
            }
            NodeState {
                id: node_name(i),
                alive: c.is_up(i),
                role: st
                    .as_ref()
                    .map_or("follower", |s| role_name(s.role))
                    .to_string(),
                term: st.as_ref().map_or(0, |s| s.term),
                voted_for: st
                    .as_ref()
                    .and_then(|s| s.voted_for.as_ref().map(|v| v.0.clone())),
                leader_id: st
                    .as_ref()
                    .and_then(|s| s.leader_id.as_ref().map(|v| v.0.clone())),
                commit_index: st.as_ref().map_or(0, |s| s.commit_index),
                last_applied: st.as_ref().map_or(0, |s| s.last_applied),
                last_log_index: st.as_ref().map_or(0, |s| s.last_log_index),
                snapshot_index: st.as_ref().map_or(0, |s| s.snapshot_index),
                timer_start: st.as_ref().map_or(0, |s| s.election_timer_start),
                timer_deadline: st.as_ref().map_or(0, |s| s.election_deadline),
                log: log.iter().map(entry).collect(),
                member: member(s, shown.as_ref().map(|(_, m)| m), i).to_string(),
                config: st
                    .as_ref()
                    .map_or(String::new(), |s| membership_summary(&s.membership)),
                transfer_to: st
                    .as_ref()
                    .and_then(|s| s.transfer_to.as_ref().map(|v| v.0.clone())),
                lease_until: st.as_ref().and_then(|s| s.lease_until),
                clock,
                drift_ppm,
                kv: view.map(|v| v.kv).unwrap_or_default(),
                progress: c.node(i).map_or_else(Vec::new, |h| {
                    h.node()
                        .members_progress()
                        .into_iter()
                        .map(|p| PeerProgress {
                            id: p.id.0,
                            voter: p.voter,
                            next_index: p.next_index,
                            match_index: p.match_index,
                            state: p.state,
                        })
                        .collect()
                }),
                votes: match st.as_ref().map(|s| s.role) {
                    Some(Role::Candidate | Role::PreCandidate) if c.is_up(i) => {
                        s.votes.get(i).cloned().unwrap_or_default()
                    }
                    _ => Vec::new(),
                },
            }
        })
        .collect();
    let messages = c
        .network()
        .in_flight()
        .filter_map(|m| match (m.from, m.to) {
            (Endpoint::Node(a), Endpoint::Node(b)) => Some(MessageState {
                id: m.id,
                from: node_name(a),
                to: node_name(b),
                kind: m.payload.kind().to_string(),
                sent_at: m.sent_at,
                deliver_at: m.deliver_at,
                dropped: doomed(c, a, b),
                summary: m.payload.summary(),
                fields: fields(&m.payload),
                granted: match &m.payload {
                    Payload::Raft(Message::RequestVoteResponse(r)) => Some(r.vote_granted),
                    Payload::Raft(Message::AppendEntriesResponse(r)) => Some(r.success),
                    _ => None,
                },
                entries: match &m.payload {
                    Payload::Raft(Message::AppendEntries(a)) => a
                        .entries
                        .first()
                        .zip(a.entries.last())
                        .map(|(f, l)| [f.index, l.index]),
                    _ => None,
                },
            }),
            _ => None,
        })
        .collect();
    let mut links = Vec::with_capacity(n * (n - 1));
    for a in 0..n {
        for b in (0..n).filter(|b| *b != a) {
            let k = s.link(a, b);
            let cfg = c.network().link(Endpoint::Node(a), Endpoint::Node(b));
            links.push(LinkState {
                from: node_name(a),
                to: node_name(b),
                cut: c.network().is_cut(Endpoint::Node(a), Endpoint::Node(b)),
                delivered: k.delivered,
                dropped: k.dropped,
                loss: cfg.loss,
                latency_min: cfg.latency_min,
                latency_max: cfg.latency_max,
            });
        }
    }
    let ops = s.ops.iter().map(|r| op_state(s, r)).collect();
    let link = global_link(c.network(), n);
    State {
        now: c.now(),
        events: c.stats().events,
        seed: s.seed.to_string(),
        nodes,
        messages,
        drops: s.drops.iter().cloned().collect(),
        links,
        ops,
        trace: s.trace.iter().cloned().collect(),
        message_trace: s.message_trace.iter().cloned().collect(),
        last_event: s.last_event.clone(),
        history,
        violations: c.failure().map(|v| v.to_string()).into_iter().collect(),
        net: NetState {
            loss: link.loss,
            duplicate: link.duplicate,
            latency_min: link.latency_min,
            latency_max: link.latency_max,
            filters: s
                .cluster
                .network()
                .filters()
                .iter()
                .map(|f| FilterState {
                    kind: f.kind.clone(),
                    from: f.from.map(node_name),
                    to: f.to.map(node_name),
                })
                .collect(),
        },
        membership: shown.map_or_else(MembershipState::default, |(i, m)| {
            let names = |set: &BTreeSet<NodeId>| set.iter().map(|x| x.0.clone()).collect();
            MembershipState {
                voters: names(&m.voters),
                outgoing: names(&m.outgoing),
                learners: names(&m.learners),
                joint: m.is_joint(),
                from: Some(node_name(i)),
            }
        }),
        max_nodes: MAX_NODES as u32,
    }
}

/// Every field of a node-to-node message, `[name, value]`, for the page's drawer.
fn fields(p: &Payload) -> Vec<[String; 2]> {
    let f = |k: &str, v: String| [k.to_string(), v];
    let Payload::Raft(m) = p else {
        return vec![f("summary", p.summary())];
    };
    match m {
        Message::RequestVote(v) => vec![
            f("term", v.term.to_string()),
            f("candidate", v.candidate_id.0.clone()),
            f(
                "last_log",
                format!("{}/{}", v.last_log_index, v.last_log_term),
            ),
            f("pre_vote", v.pre_vote.to_string()),
            f("transfer", v.transfer.to_string()),
        ],
        Message::RequestVoteResponse(r) => vec![
            f("term", r.term.to_string()),
            f("granted", r.vote_granted.to_string()),
            f("pre_vote", r.pre_vote.to_string()),
            f("commit", format!("{}/{}", r.commit.0, r.commit.1)),
        ],
        Message::AppendEntries(a) => {
            let entries = if a.entries.is_empty() {
                "none (heartbeat)".to_string()
            } else {
                a.entries
                    .iter()
                    .map(|e| format!("#{} t{} {}", e.index, e.term, entry(e).summary))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            vec![
                f("term", a.term.to_string()),
                f("leader", a.leader_id.0.clone()),
                f("prev_log_index", a.prev_log_index.to_string()),
                f("prev_log_term", a.prev_log_term.to_string()),
                f("entries", entries),
                f("leader_commit", a.leader_commit.to_string()),
                f("read_seq", a.read_seq.to_string()),
                f("sent_clock", a.sent_at.to_string()),
            ]
        }
        Message::AppendEntriesResponse(r) => vec![
            f("term", r.term.to_string()),
            f("success", r.success.to_string()),
            f("match_index", r.match_index.to_string()),
            f(
                "conflict",
                format!(
                    "{}/{}",
                    r.conflict_index.map_or("-".to_string(), |i| i.to_string()),
                    r.conflict_term.map_or("-".to_string(), |t| t.to_string())
                ),
            ),
            f("read_seq", r.read_seq.to_string()),
        ],
        Message::InstallSnapshot(x) => vec![
            f("term", x.term.to_string()),
            f("leader", x.leader_id.0.clone()),
            f(
                "last_included",
                format!("{}/{}", x.last_included_index, x.last_included_term),
            ),
            f("offset", x.offset.to_string()),
            f("bytes", format!("{} of {}", x.data.len(), x.total_size())),
            f("done", x.done.to_string()),
        ],
        Message::InstallSnapshotResponse(r) => vec![
            f("term", r.term.to_string()),
            f("last_included", r.last_included_index.to_string()),
            f("offset", r.offset.to_string()),
            f("done", r.done.to_string()),
        ],
        Message::TimeoutNow(t) => vec![
            f("term", t.term.to_string()),
            f("leader", t.leader_id.0.clone()),
        ],
    }
}

/// Node `i`'s place in configuration `m` (see `NodeState::member`).
fn member(s: &Session, m: Option<&Membership>, i: usize) -> &'static str {
    let id = NodeId(node_name(i));
    match m {
        Some(m) if m.voters.contains(&id) && (m.outgoing.contains(&id) || !m.is_joint()) => "voter",
        Some(m) if m.voters.contains(&id) => "incoming",
        Some(m) if m.outgoing.contains(&id) => "outgoing",
        Some(m) if m.learners.contains(&id) => "learner",
        _ if s.ever_member.get(i).copied().unwrap_or(false) => "removed",
        _ => "joining",
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Follower => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

fn entry(e: &LogEntry) -> LogEntryState {
    let summary = match e.payload.command() {
        None => "no-op".to_string(),
        Some(c) => match c.op {
            OpType::Put => format!("put {}={}", c.key, c.value),
            OpType::Delete => format!("delete {}", c.key),
            OpType::Cas => format!("cas {} {:?}→{:?}", c.key, c.expected, c.value),
            OpType::BatchPut => format!("batch_put ({} keys)", c.entries.len()),
            OpType::BatchDelete => format!("batch_delete ({} keys)", c.keys.len()),
        },
    };
    LogEntryState {
        index: e.index,
        term: e.term,
        summary,
    }
}

fn op_state(s: &Session, r: &OpRecord) -> OpState {
    let c = &s.cluster;
    let client = &c.clients()[r.client];
    let done: Option<&HistoryOp> = r.done.map(|k| &c.history().ops[k]);
    let node = match (done, client.pending()) {
        (Some(h), _) if h.node.is_some() => h.node.clone(),
        (None, Some(p)) => Some(node_name(p.target)),
        (Some(_), _) => Some(node_name(client.leader_guess())),
        (None, None) => None,
    };
    let (kind, key, value, expected, mode) = match &r.op {
        ClientOp::Put { key, value } => ("put", key, Some(value.clone()), None, None),
        ClientOp::Get { key, policy } => {
            let m = policy.as_str();
            ("get", key, None, None, Some(m.to_string()))
        }
        ClientOp::Delete { key } => ("delete", key, None, None, None),
        ClientOp::Cas { key, expected, new } => {
            ("cas", key, Some(new.clone()), Some(expected.clone()), None)
        }
    };
    let (status, result) = match done {
        None => ("pending", None),
        Some(h) => match h.status {
            OpStatus::Fail => ("failed", "failed: not applied".to_string().into()),
            OpStatus::Unknown => ("failed", "unknown outcome".to_string().into()),
            OpStatus::Ok => match (&r.op, &h.value, h.result) {
                (ClientOp::Get { .. }, Some(Some(v)), _) => ("ok", Some(format!("value={v:?}"))),
                (ClientOp::Get { .. }, _, _) => ("ok", Some("not_found".to_string())),
                (ClientOp::Cas { .. }, _, Some(CasResult::Failed)) => {
                    ("failed", Some("cas_failed".to_string()))
                }
                _ => ("ok", Some("ok".to_string())),
            },
        },
    };
    OpState {
        id: r.id,
        op: kind.to_string(),
        key: key.clone(),
        value,
        expected,
        mode,
        target: r.target.map(node_name),
        node,
        index: done.and_then(|h| h.index.or(h.applied)),
        status: status.to_string(),
        result,
        invoked_at: r.invoked_at,
        completed_at: done.and_then(|h| h.complete),
    }
}

/// The linearizability verdict of the history so far, recomputed only when the history grew.
/// Stale reads are left out of the linearizability check (they may be old by design) and
/// counted; each is still checked to return a value some write produced, and one that did
/// not makes the verdict false.
fn verdict(s: &mut Session) -> HistoryVerdict {
    let h = s.cluster.history();
    if let Some((len, v)) = &s.verdict
        && *len == h.ops.len()
    {
        return v.clone();
    }
    let checked = h.without_stale_reads();
    let ops = checked.ops.iter().filter(|o| o.complete.is_some()).count() as u64;
    let stale_unchecked = h
        .ops
        .iter()
        .filter(|o| o.stale && o.complete.is_some())
        .count() as u64;
    let invented = h.invented_stale_reads();
    let stale_invented = invented.len() as u64;
    let v = if h.ops.is_empty() {
        HistoryVerdict {
            linearizable: None,
            ops: 0,
            stale_unchecked,
            stale_invented,
            detail: "no completed operations yet".to_string(),
        }
    } else if let Some(r) = invented.first() {
        HistoryVerdict {
            linearizable: Some(false),
            ops,
            stale_unchecked,
            stale_invented,
            detail: format!(
                "a stale read by {} returned {:?}, a value no write produced",
                r.client, r.value
            ),
        }
    } else {
        let (linearizable, detail) = match linearizability::check(&checked) {
            Ok(()) => (Some(true), format!("{ops} ops checked")),
            Err(e @ LinError::NotLinearizable { .. }) => (Some(false), e.to_string()),
            Err(e) => (None, format!("checker gave up: {e}")),
        };
        HistoryVerdict {
            linearizable,
            ops,
            stale_unchecked,
            stale_invented,
            detail,
        }
    };
    s.verdict = Some((h.ops.len(), v.clone()));
    v
}

/// The global link setting the page's sliders show: the one most node links have (one link set
/// by hand, with `set_link`, does not move the sliders).
fn global_link(net: &raftkv_core::sim::network::Network, n: usize) -> LinkConfig {
    let mut seen: Vec<(LinkConfig, usize)> = Vec::new();
    for a in 0..n {
        for b in (0..n).filter(|b| *b != a) {
            let l = net.link(Endpoint::Node(a), Endpoint::Node(b));
            match seen.iter_mut().find(|(x, _)| *x == l) {
                Some((_, k)) => *k += 1,
                None => seen.push((l, 1)),
            }
        }
    }
    // The first of the most common, so a tie picks the one of the lowest link.
    let most = seen.iter().map(|(_, k)| *k).max().unwrap_or(0);
    seen.into_iter().find(|(_, k)| *k == most).map_or_else(
        || net.link(Endpoint::Node(0), Endpoint::Node(1)),
        |(l, _)| l,
    )
}

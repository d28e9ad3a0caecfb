//! DistributedKV: the only thing the HTTP layer talks to.
//!
//! Writes propose through a small [`RaftHandle`], the port in [`crate::node_port`] (so this layer
//! is tested with a fake, without Raft) and are answered once applied (sync mode), with the log
//! index they committed at, or at once with an op id (async mode). Reads obey their consistency
//! (the request's, else the server's read policy): `stale` reads the local state machine;
//! `readindex` asks the leader for a read index, waits until it is applied here, then reads;
//! `lease` does the same with the index of the leader's lease when it holds one (no round
//! trip to a quorum) and falls back to `readindex` when it does not. A read with a minimum
//! index first waits, on any node, until that index is applied here (read-your-writes).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use raftkv_core::raft::{Index, Status};
use raftkv_core::{ApplyResult, Command, Entry, LeaderHint, NodeId, OpCache, OpId, OpResult};
use raftkv_core::{ReadPolicy, WriteMode};
use serde::{Deserialize, Serialize};

use crate::config::Peer;
use crate::node_port::{NodeError, RaftHandle, TransferDone};
use crate::peers::PeerTable;
use crate::shared_sm::SharedSm;

/// How DistributedKV behaves.
#[derive(Clone, Debug)]
pub struct DkvConfig {
    /// This node.
    pub id: NodeId,
    /// Every member with its client address, this node included (it follows the
    /// configuration as it changes).
    pub peers: Arc<PeerTable>,
    /// The default read policy (a request may override it).
    pub read_policy: ReadPolicy,
    /// When writes are answered.
    pub write_mode: WriteMode,
    /// How long async results stay fetchable.
    pub op_ttl: Duration,
    /// How long a request waits for a leader to be known (during an election) before it is
    /// answered `not_leader`.
    pub leader_wait: Duration,
    /// The longest a read waits for its `min_index` to be applied here before it is answered
    /// `not_caught_up` (a request may ask for less).
    pub min_index_timeout: Duration,
    /// How long a linearizable read waits for its read index to be applied here.
    pub apply_wait: Duration,
}

/// How one read is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// The consistency asked for; `None`: the server's read policy.
    pub consistency: Option<ReadPolicy>,
    /// Answer only once this node has applied this index (a write's `index`), whatever the
    /// consistency: read-your-writes on any node.
    pub min_index: Option<Index>,
    /// The longest to wait for `min_index`, if less than the server's bound.
    pub wait: Option<Duration>,
}

impl From<Option<ReadPolicy>> for ReadOptions {
    fn from(consistency: Option<ReadPolicy>) -> Self {
        ReadOptions {
            consistency,
            ..ReadOptions::default()
        }
    }
}

/// The default number of keys a range read answers per page.
pub const DEFAULT_RANGE_LIMIT: usize = 100;
/// The most keys a range read answers per page.
pub const MAX_RANGE_LIMIT: usize = 10_000;

/// Which keys a range read covers: from `start` (inclusive) to `end` (exclusive; `None`: the
/// last key), only those beginning with `prefix` if set, at most `limit` of them per page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeQuery {
    /// The first key to answer (a continuation token resumes here).
    pub start: String,
    /// The first key not to answer.
    pub end: Option<String>,
    /// Only keys with this prefix (`start` is at or after it).
    pub prefix: Option<String>,
    /// The most keys in the page.
    pub limit: usize,
}

/// One page of a range read, as `GET /kv?…` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RangePage {
    /// Always true.
    pub ok: bool,
    /// The keys and values, in key order.
    pub kvs: Vec<Entry>,
    /// More keys follow: ask again with `continue=` [`next`](Self::next).
    pub more: bool,
    /// The key the next page starts at, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// How a write was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteReply {
    /// Sync mode: the write was applied and this is its result.
    Done(ApplyResult),
    /// Async mode: the write was accepted; fetch its result with [`DistributedKv::op_result`].
    Accepted(OpId),
}

/// What `GET /status` reports: the Raft node's own [`Status`], flattened, and what this
/// server adds to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeStatus {
    /// Always true: status itself cannot fail.
    pub ok: bool,
    /// The node's id, role, term, vote, leader, commit/applied/log/snapshot indexes and
    /// election timer (on this process's clock, in milliseconds since the node started).
    #[serde(flatten)]
    pub raft: Status,
    /// The leader's client address, if known.
    pub leader_addr: Option<String>,
    /// Every member, this node included.
    pub peers: Vec<Peer>,
    /// The default read policy.
    pub read_policy: ReadPolicy,
    /// The write mode.
    pub write_mode: WriteMode,
    /// The node stopped after a storage failure: it serves nothing but status.
    pub stopped: bool,
}

/// The KV service over a Raft node. Share it as `Arc<DistributedKv>`.
pub struct DistributedKv {
    node: Arc<dyn RaftHandle>,
    sm: SharedSm,
    cfg: DkvConfig,
    ops: Mutex<OpCache>,
    /// The origin of the op cache's milliseconds: core reads no clock, so we pass it ours.
    epoch: Instant,
    /// Makes op ids unique across restarts, so a client cannot fetch another op's result with
    /// an id it got before a restart.
    op_prefix: String,
    next_op: AtomicU64,
}

impl DistributedKv {
    /// A service proposing through `node` and reading `sm` (the state machine `node` applies to).
    pub fn new(node: Arc<dyn RaftHandle>, sm: SharedSm, cfg: DkvConfig) -> Arc<Self> {
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Arc::new(DistributedKv {
            op_prefix: format!("{}-{boot:x}", cfg.id),
            ops: Mutex::new(OpCache::new(millis(cfg.op_ttl))),
            epoch: Instant::now(),
            node,
            sm,
            cfg,
            next_op: AtomicU64::new(1),
        })
    }

    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        self.node.is_leader()
    }

    /// Who leads, as far as this node knows.
    pub fn leader_hint(&self) -> LeaderHint {
        self.node.leader_hint()
    }

    /// Reads `key` as `opts` say (a bare `Option<ReadPolicy>` is just a consistency).
    pub async fn get(
        &self,
        key: &str,
        opts: impl Into<ReadOptions>,
    ) -> Result<ApplyResult, NodeError> {
        if key.is_empty() {
            return Err(NodeError::BadRequest("key must not be empty".into()));
        }
        self.read_barrier(opts.into()).await?;
        let value = self.sm.engine().get(key).map_err(storage_failed)?;
        // Checked after reading: a node that stopped mid-turn may hold state that is not
        // durable.
        self.check_running()?;
        Ok(match value {
            Some(v) => ApplyResult {
                value: Some(v),
                ..ApplyResult::ok()
            },
            None => ApplyResult::error("not_found", format!("key {key:?} not found")),
        })
    }

    /// Reads `keys`: missing keys are absent from `values`.
    pub async fn mget(
        &self,
        keys: &[String],
        opts: impl Into<ReadOptions>,
    ) -> Result<ApplyResult, NodeError> {
        if keys.is_empty() {
            return Err(NodeError::BadRequest("keys must not be empty".into()));
        }
        if keys.iter().any(String::is_empty) {
            return Err(NodeError::BadRequest(
                "keys must not contain an empty key".into(),
            ));
        }
        self.read_barrier(opts.into()).await?;
        let values = self.sm.engine().mget(keys).map_err(storage_failed)?;
        self.check_running()?;
        Ok(ApplyResult {
            values: Some(values),
            ..ApplyResult::ok()
        })
    }

    /// Reads the keys of `q` in order, a page at a time, at the consistency `opts` say (the
    /// same barrier as [`get`](Self::get)); the page is read at one point in time.
    pub async fn range(
        &self,
        q: &RangeQuery,
        opts: impl Into<ReadOptions>,
    ) -> Result<RangePage, NodeError> {
        if q.limit == 0 || q.limit > MAX_RANGE_LIMIT {
            return Err(NodeError::BadRequest(format!(
                "limit must be between 1 and {MAX_RANGE_LIMIT}"
            )));
        }
        self.read_barrier(opts.into()).await?;
        // One more than asked: whether there is more, and where the next page starts.
        let mut kvs = self
            .sm
            .engine()
            .range(&q.start, q.end.as_deref(), q.limit + 1)
            .map_err(storage_failed)?;
        self.check_running()?;
        if let Some(p) = &q.prefix {
            // The keys with a prefix are contiguous from it: stop at the first without.
            if let Some(cut) = kvs.iter().position(|(k, _)| !k.starts_with(p.as_str())) {
                kvs.truncate(cut);
            }
        }
        let next = (kvs.len() > q.limit).then(|| kvs[q.limit].0.clone());
        kvs.truncate(q.limit);
        Ok(RangePage {
            ok: true,
            kvs: kvs
                .into_iter()
                .map(|(key, value)| Entry { key, value })
                .collect(),
            more: next.is_some(),
            next,
        })
    }

    /// A point-in-time view of the whole state for a backup, taken on the leader after a
    /// ReadIndex barrier: it holds every write acknowledged before the request (a follower
    /// answers `not_leader`, like a write).
    pub async fn snapshot_view(&self) -> Result<Box<dyn raftkv_core::SnapshotView>, NodeError> {
        self.read_barrier(ReadOptions::from(Some(ReadPolicy::ReadIndex)))
            .await?;
        let view = self.sm.engine().snapshot_view().map_err(storage_failed)?;
        self.check_running()?;
        Ok(view)
    }

    /// Waits until the state machine may answer a read of `opts`: a linearizable read goes to
    /// the leader (a follower redirects it before waiting for anything), then every read waits
    /// for its `min_index`, then a linearizable one for the index the leader confirmed (lease
    /// or ReadIndex round). A stale read without a minimum index waits for nothing.
    async fn read_barrier(&self, opts: ReadOptions) -> Result<(), NodeError> {
        self.check_running()?;
        let policy = opts.consistency.unwrap_or(self.cfg.read_policy);
        if policy != ReadPolicy::Stale {
            self.ensure_leader().await?;
        }
        if let Some(min) = opts.min_index {
            self.wait_min_index(min, opts.wait).await?;
        }
        let index = match policy {
            ReadPolicy::Stale => return Ok(()),
            ReadPolicy::Lease => self.node.read_lease().await?,
            ReadPolicy::ReadIndex => self.node.read_index().await?,
        };
        if self.node.wait_applied(index, self.cfg.apply_wait).await? {
            Ok(())
        } else {
            Err(NodeError::Unavailable(format!(
                "timed out waiting for read index {index} to be applied here"
            )))
        }
    }

    /// Waits until this node applied `min`, for up to `wait` (at most the configured bound).
    async fn wait_min_index(&self, min: Index, wait: Option<Duration>) -> Result<(), NodeError> {
        let wait = wait.map_or(self.cfg.min_index_timeout, |w| {
            w.min(self.cfg.min_index_timeout)
        });
        if self.node.wait_applied(min, wait).await? {
            return Ok(());
        }
        let applied = self.node.status().last_applied;
        Err(NodeError::NotCaughtUp(format!(
            "this node applied index {applied}, not min_index {min}, within {} ms; retry \
             later or at another node",
            wait.as_millis()
        )))
    }

    fn check_running(&self) -> Result<(), NodeError> {
        if self.node.is_stopped() {
            return Err(NodeError::Unavailable(
                "the raft node has stopped (see the server log)".into(),
            ));
        }
        Ok(())
    }

    /// Fails with `NotLeader` unless this node leads. While no leader is known (an election
    /// is under way) it waits a little for one first, so a client is not bounced for nothing.
    async fn ensure_leader(&self) -> Result<(), NodeError> {
        if self.node.is_leader() {
            return Ok(());
        }
        if self.node.leader_hint().leader_id.is_none() {
            self.node.wait_for_leader(self.cfg.leader_wait).await?;
            if self.node.is_leader() {
                return Ok(());
            }
        }
        Err(NodeError::NotLeader(self.node.leader_hint()))
    }

    /// Carries out a write: refused before it reaches the log if invalid (so it changes
    /// nothing, not even the dedupe table) or if this node does not lead.
    pub async fn write(self: &Arc<Self>, cmd: Command) -> Result<WriteReply, NodeError> {
        cmd.validate().map_err(|e| NodeError::BadRequest(e.0))?;
        self.check_running()?;
        self.ensure_leader().await?;
        if let Some(r) = self.dedupe_reply(&cmd) {
            // The write was applied at an index this node has applied since: a read with the
            // applied index as its minimum sees it.
            let index = self.node.applied_index().await?;
            return Ok(WriteReply::Done(ApplyResult {
                index: Some(index),
                ..r
            }));
        }
        match self.cfg.write_mode {
            WriteMode::Sync => Ok(WriteReply::Done(self.node.propose(cmd).await?)),
            WriteMode::Async => {
                let n = self.next_op.fetch_add(1, Ordering::Relaxed);
                let id = OpId(format!("{}-{n}", self.op_prefix));
                lock(&self.ops).insert_pending(id.clone(), self.now_ms());
                let this = Arc::clone(self);
                let task_id = id.clone();
                tokio::spawn(async move {
                    let result = match this.node.propose(cmd).await {
                        Ok(r) => r,
                        Err(e) => ApplyResult::error(e.code(), e.to_string()),
                    };
                    let now = this.now_ms();
                    lock(&this.ops).complete(task_id, result, now);
                });
                Ok(WriteReply::Accepted(id))
            }
        }
    }

    /// Hands this leader's leadership to `to` (`None`: the voter core picks, the most caught
    /// up) and resolves once this node knows the new leader. A follower refuses with the leader
    /// hint (the API redirects); asking the leader to hand over to itself is done at once.
    pub async fn transfer_leader(&self, to: Option<NodeId>) -> Result<TransferDone, NodeError> {
        if to.as_ref().is_some_and(|id| id.as_str().is_empty()) {
            return Err(NodeError::BadRequest("to must not be empty".into()));
        }
        self.check_running()?;
        self.ensure_leader().await?;
        if to.as_ref() == Some(&self.cfg.id) {
            return Ok(TransferDone {
                to: self.cfg.id.clone(),
                leader: self.node.leader_hint(),
            });
        }
        self.node.transfer_leader(to).await
    }

    /// A retry of an applied (client_id, seq) changes nothing: answer it from the dedupe table
    /// without growing the log.
    fn dedupe_reply(&self, cmd: &Command) -> Option<ApplyResult> {
        if cmd.client_id.is_empty() || cmd.seq == 0 {
            return None;
        }
        // Applying an already-applied (client_id, seq) returns the session's last reply,
        // unchanged, before touching any state: reading it here is the same answer. A storage
        // error just skips the fast path (the log dedupes too).
        let s = self.sm.engine().session(&cmd.client_id).ok().flatten()?;
        (s.last_seq >= cmd.seq).then_some(s.last_reply)
    }

    /// The state of async op `id` now, or `None` if unknown or expired.
    pub fn op_result(&self, id: &OpId) -> Option<OpResult> {
        lock(&self.ops).get(id, self.now_ms())
    }

    /// Milliseconds since this service started, for the op cache.
    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// This node's status.
    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            ok: true,
            raft: self.node.status(),
            leader_addr: self.node.leader_hint().leader_addr,
            peers: self.cfg.peers.peers(),
            read_policy: self.cfg.read_policy,
            write_mode: self.cfg.write_mode,
            stopped: self.node.is_stopped(),
        }
    }

    /// A copy of every key and value (tests use it to check that a refused request changed
    /// nothing).
    pub fn entries(&self) -> BTreeMap<String, String> {
        self.sm.engine().entries().unwrap_or_default()
    }
}

/// The engine failed to read: the node cannot serve the read (503).
fn storage_failed(e: raftkv_core::SmError) -> NodeError {
    NodeError::Unavailable(format!("reading the state: {e}"))
}

/// `d` in whole milliseconds, saturating (core's op cache counts time in milliseconds).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Locks `m`, recovering from poisoning: the op cache stays consistent whatever a holder did.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_port::BoxFut;
    use raftkv_core::raft::{Index, Role};
    use serde_json::json;
    use tokio::sync::watch;

    /// A fake node: applies proposals straight to the state machine when it leads (each at
    /// the next index), records them, and serves a read index and a lease that the test
    /// controls.
    struct FakeNode {
        sm: SharedSm,
        leader: bool,
        proposed: Mutex<Vec<Command>>,
        read_index: Index,
        /// The lease's read index, or no lease (a lease read then takes a read index).
        lease: Option<Index>,
        applied: watch::Sender<Index>,
        read_index_calls: AtomicU64,
    }

    impl FakeNode {
        fn new(sm: SharedSm, leader: bool) -> Arc<Self> {
            Arc::new(fake(sm, leader))
        }
    }

    impl RaftHandle for FakeNode {
        fn propose(&self, cmd: Command) -> BoxFut<'_, ApplyResult> {
            Box::pin(async move {
                lock(&self.proposed).push(cmd.clone());
                let result = self.sm.engine().apply_unlogged(&cmd).unwrap();
                self.applied.send_modify(|a| *a += 1);
                Ok(ApplyResult {
                    index: Some(*self.applied.borrow()),
                    ..result
                })
            })
        }
        fn is_leader(&self) -> bool {
            self.leader
        }
        fn leader_hint(&self) -> LeaderHint {
            if self.leader {
                LeaderHint {
                    leader_id: Some(NodeId::from("n1")),
                    leader_addr: Some("127.0.0.1:1".into()),
                }
            } else {
                LeaderHint {
                    leader_id: Some(NodeId::from("n2")),
                    leader_addr: Some("127.0.0.1:2".into()),
                }
            }
        }
        fn read_index(&self) -> BoxFut<'_, Index> {
            self.read_index_calls.fetch_add(1, Ordering::Relaxed);
            let i = self.read_index;
            Box::pin(async move { Ok(i) })
        }
        fn read_lease(&self) -> BoxFut<'_, Index> {
            match self.lease {
                Some(index) => Box::pin(async move { Ok(index) }),
                None => self.read_index(),
            }
        }
        fn applied_index(&self) -> BoxFut<'_, Index> {
            let a = *self.applied.borrow();
            Box::pin(async move { Ok(a) })
        }
        fn wait_applied(&self, index: Index, timeout: Duration) -> BoxFut<'_, bool> {
            let mut rx = self.applied.subscribe();
            Box::pin(async move {
                match tokio::time::timeout(timeout, rx.wait_for(|a| *a >= index)).await {
                    Ok(Ok(_)) => Ok(true),
                    Ok(Err(_)) => Err(NodeError::Unavailable("gone".into())),
                    Err(_) => Ok(false),
                }
            })
        }
        fn wait_for_leader(&self, _timeout: Duration) -> BoxFut<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn transfer_leader(&self, _to: Option<NodeId>) -> BoxFut<'_, TransferDone> {
            Box::pin(async {
                Err(NodeError::TransferRefused(
                    raftkv_core::raft::TransferError::NoCandidate,
                ))
            })
        }
        fn status(&self) -> Status {
            Status {
                id: NodeId::from("n1"),
                role: if self.leader {
                    Role::Leader
                } else {
                    Role::Follower
                },
                term: 1,
                voted_for: None,
                leader_id: self.leader_hint().leader_id,
                commit_index: 0,
                last_applied: *self.applied.borrow(),
                last_log_index: 0,
                last_log_term: 0,
                snapshot_index: 0,
                election_timer_start: 0,
                election_deadline: 0,
                membership: Default::default(),
                transfer_to: None,
                lease_until: None,
            }
        }
        fn is_stopped(&self) -> bool {
            false
        }
    }

    fn dkv(node: Arc<FakeNode>, sm: SharedSm, policy: ReadPolicy) -> Arc<DistributedKv> {
        DistributedKv::new(
            node,
            sm,
            DkvConfig {
                id: NodeId::from("n1"),
                peers: Default::default(),
                read_policy: policy,
                write_mode: WriteMode::Sync,
                op_ttl: Duration::from_secs(60),
                leader_wait: Duration::from_millis(10),
                min_index_timeout: Duration::from_secs(5),
                apply_wait: Duration::from_secs(5),
            },
        )
    }

    /// A [`FakeNode`] by value, for struct updates.
    fn fake(sm: SharedSm, leader: bool) -> FakeNode {
        FakeNode {
            sm,
            leader,
            proposed: Mutex::new(Vec::new()),
            read_index: 0,
            lease: None,
            applied: watch::channel(0).0,
            read_index_calls: AtomicU64::new(0),
        }
    }

    fn put(k: &str, v: &str, seq: u64) -> Command {
        Command::put(k, v).with_client("c1", seq)
    }

    #[test]
    fn status_json_has_the_raft_status_fields_at_its_top_level() {
        let sm = SharedSm::new();
        let d = dkv(FakeNode::new(sm.clone(), true), sm, ReadPolicy::Stale);
        let v = serde_json::to_value(d.status()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "ok",
            "id",
            "role",
            "term",
            "leader_id",
            "leader_addr",
            "commit_index",
            "last_applied",
            "last_log_index",
            "snapshot_index",
            "peers",
            "read_policy",
            "write_mode",
            "stopped",
        ] {
            assert!(keys.contains(&k), "{k} missing from {v}");
        }
        assert!(!keys.contains(&"raft"), "{v}");
        assert_eq!((&v["id"], &v["role"]), (&json!("n1"), &json!("leader")));
        let back: NodeStatus = serde_json::from_value(v).unwrap();
        assert_eq!(back, d.status());
    }

    #[tokio::test]
    async fn writes_are_proposed_but_retries_and_invalid_commands_never_reach_the_log() {
        let sm = SharedSm::new();
        let node = FakeNode::new(sm.clone(), true);
        let d = dkv(Arc::clone(&node), sm, ReadPolicy::Stale);
        assert_eq!(
            d.write(put("a", "1", 1)).await,
            Ok(WriteReply::Done(ApplyResult {
                index: Some(1),
                ..ApplyResult::ok()
            }))
        );
        d.write(Command::delete("a").with_client("c1", 2))
            .await
            .unwrap();
        let ops: Vec<_> = lock(&node.proposed).iter().map(|c| c.op).collect();
        assert_eq!(
            ops,
            vec![raftkv_core::OpType::Put, raftkv_core::OpType::Delete]
        );
        // A retry of an applied (client, seq) is answered from the dedupe table, not proposed.
        d.write(put("a", "x", 2)).await.unwrap();
        assert_eq!(lock(&node.proposed).len(), 2);
        // An invalid command never reaches the log.
        let bad = Command::new(raftkv_core::OpType::BatchPut).with_client("c1", 3);
        assert!(matches!(d.write(bad).await, Err(NodeError::BadRequest(_))));
        assert_eq!(lock(&node.proposed).len(), 2);
    }

    #[tokio::test]
    async fn a_follower_refuses_writes_with_the_leader_hint_and_proposes_nothing() {
        let sm = SharedSm::new();
        let node = FakeNode::new(sm.clone(), false);
        let d = dkv(Arc::clone(&node), sm, ReadPolicy::Stale);
        match d.write(put("a", "1", 1)).await {
            Err(NodeError::NotLeader(h)) => {
                assert_eq!(h.leader_addr.as_deref(), Some("127.0.0.1:2"));
            }
            other => panic!("expected not_leader, got {other:?}"),
        }
        assert!(lock(&node.proposed).is_empty());
    }

    #[tokio::test]
    async fn stale_reads_serve_the_local_state_machine_without_a_read_index() {
        let sm = SharedSm::new();
        // A follower serves stale reads from whatever its state machine holds.
        let node = FakeNode::new(sm.clone(), false);
        sm.engine().apply_unlogged(&put("a", "1", 1)).unwrap();
        let d = dkv(Arc::clone(&node), sm, ReadPolicy::Stale);
        assert_eq!(d.get("a", None).await.unwrap().value.as_deref(), Some("1"));
        assert_eq!(
            d.get("b", None).await.unwrap().err_code.as_deref(),
            Some("not_found")
        );
        let m = d.mget(&["a".into(), "b".into()], None).await.unwrap();
        assert_eq!(m.values.unwrap().len(), 1);
        assert_eq!(node.read_index_calls.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_requests_consistency_overrides_the_read_policy_and_readindex_needs_the_leader() {
        let sm = SharedSm::new();
        let node = FakeNode::new(sm.clone(), false);
        let stale = dkv(Arc::clone(&node), sm.clone(), ReadPolicy::Stale);
        let ri = dkv(Arc::clone(&node), sm.clone(), ReadPolicy::ReadIndex);
        // The policy decides; a follower cannot serve readindex reads.
        assert!(stale.get("a", None).await.is_ok());
        assert!(matches!(
            ri.get("a", None).await,
            Err(NodeError::NotLeader(_))
        ));
        // A per-request consistency overrides the policy both ways.
        assert!(ri.get("a", Some(ReadPolicy::Stale)).await.is_ok());
        assert!(matches!(
            stale.get("a", Some(ReadPolicy::ReadIndex)).await,
            Err(NodeError::NotLeader(_))
        ));
        // On a leader a readindex read asks for a read index.
        let leader = FakeNode::new(sm.clone(), true);
        let ri = dkv(Arc::clone(&leader), sm, ReadPolicy::ReadIndex);
        assert!(ri.get("a", None).await.is_ok());
        assert_eq!(leader.read_index_calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_readindex_read_waits_until_its_read_index_is_applied() {
        let sm = SharedSm::new();
        let node = Arc::new(FakeNode {
            read_index: 5,
            applied: watch::channel(4).0,
            ..fake(sm.clone(), true)
        });
        let d = dkv(Arc::clone(&node), sm.clone(), ReadPolicy::ReadIndex);
        let got = answered_once_applied(&node, &sm, 5, async move { d.get("a", None).await });
        assert_eq!(got.await.unwrap().value.as_deref(), Some("5"));
    }

    /// Runs `read`, checks that it waits while `index` is not applied, then applies a put of
    /// `a` = `index` as entry `index` and returns the read's answer.
    async fn answered_once_applied(
        node: &FakeNode,
        sm: &SharedSm,
        index: Index,
        read: impl Future<Output = Result<ApplyResult, NodeError>> + Send + 'static,
    ) -> Result<ApplyResult, NodeError> {
        let read = tokio::spawn(read);
        // Yield until the read is parked on the index.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert!(
            !read.is_finished(),
            "read answered before index {index} applied"
        );
        sm.engine()
            .apply_unlogged(&put("a", &index.to_string(), 1))
            .unwrap();
        node.applied.send_replace(index);
        read.await.unwrap()
    }

    #[tokio::test]
    async fn a_retried_write_answers_an_index_at_or_past_the_one_it_committed_at() {
        let sm = SharedSm::new();
        let node = FakeNode::new(sm.clone(), true);
        let d = dkv(Arc::clone(&node), sm, ReadPolicy::Stale);
        let first = d.write(put("a", "1", 1)).await.unwrap();
        d.write(put("b", "2", 2)).await.unwrap();
        assert_eq!(
            first,
            WriteReply::Done(ApplyResult {
                index: Some(1),
                ..ApplyResult::ok()
            })
        );
        // Answered from the dedupe table: not proposed again, and its index (the applied one)
        // is one a read with it as min_index sees the write at.
        let retry = d.write(put("a", "1", 1)).await.unwrap();
        assert_eq!(
            retry,
            WriteReply::Done(ApplyResult {
                index: Some(2),
                ..ApplyResult::ok()
            })
        );
        assert_eq!(lock(&node.proposed).len(), 2);
    }

    #[tokio::test]
    async fn a_lease_read_with_a_lease_waits_for_its_index_and_asks_no_read_index() {
        let sm = SharedSm::new();
        let node = Arc::new(FakeNode {
            lease: Some(3),
            applied: watch::channel(2).0,
            ..fake(sm.clone(), true)
        });
        let d = dkv(Arc::clone(&node), sm.clone(), ReadPolicy::ReadIndex);
        let read = async move { d.get("a", Some(ReadPolicy::Lease)).await };
        let got = answered_once_applied(&node, &sm, 3, read).await;
        assert_eq!(got.unwrap().value.as_deref(), Some("3"));
        assert_eq!(node.read_index_calls.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_lease_read_without_a_lease_falls_back_to_a_read_index_round() {
        let sm = SharedSm::new();
        let node = FakeNode::new(sm.clone(), true);
        sm.engine().apply_unlogged(&put("a", "1", 1)).unwrap();
        let d = dkv(Arc::clone(&node), sm, ReadPolicy::Lease);
        assert_eq!(d.get("a", None).await.unwrap().value.as_deref(), Some("1"));
        assert_eq!(node.read_index_calls.load(Ordering::Relaxed), 1);
        // At a follower a lease read is a linearizable read: it goes to the leader.
        let sm = SharedSm::new();
        let follower = dkv(FakeNode::new(sm.clone(), false), sm, ReadPolicy::Stale);
        assert!(matches!(
            follower.get("a", Some(ReadPolicy::Lease)).await,
            Err(NodeError::NotLeader(_))
        ));
    }

    #[tokio::test]
    async fn min_index_makes_a_stale_read_at_a_follower_wait_until_it_applied_that_index() {
        let sm = SharedSm::new();
        let node = FakeNode::new(sm.clone(), false);
        let d = dkv(Arc::clone(&node), sm.clone(), ReadPolicy::Stale);
        let opts = ReadOptions {
            min_index: Some(1),
            ..ReadOptions::default()
        };
        let read = {
            let d = Arc::clone(&d);
            async move { d.get("a", opts).await }
        };
        let got = answered_once_applied(&node, &sm, 1, read).await;
        assert_eq!(got.unwrap().value.as_deref(), Some("1"));

        // An index this node will not reach in time: not_caught_up after the wait asked for.
        let far = ReadOptions {
            min_index: Some(100),
            wait: Some(Duration::from_millis(20)),
            ..ReadOptions::default()
        };
        let t0 = Instant::now();
        let got = d.get("a", far).await;
        assert!(matches!(got, Err(NodeError::NotCaughtUp(_))), "{got:?}");
        assert!(t0.elapsed() >= Duration::from_millis(20));
        let m = d.mget(&["a".into()], far).await;
        assert!(matches!(m, Err(NodeError::NotCaughtUp(_))), "{m:?}");
    }
}

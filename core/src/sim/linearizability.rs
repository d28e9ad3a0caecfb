//! A linearizability checker for key-value histories (Wing & Gong's search with Lowe's
//! memoization, as in Porcupine).
//!
//! Keys are independent registers, so each key's operations are checked on their own — which
//! keeps the search small. Multi-key operations (mput, mdelete, mget: atomic over their keys)
//! tie keys together: the keys linked by them, directly or through other multi-key operations,
//! form one component, checked as one set of registers that each multi-key operation reads or
//! writes at a single point. Within a key, the checker looks for an order of the operations that
//! (1) respects real time: an operation that completed before another was invoked comes first,
//! and (2) replays correctly on a single register: every get returns the latest value, every
//! cas succeeds exactly when the value matches.
//!
//! Statuses: `ok` operations must be placed; `fail` operations surely did not happen and are
//! dropped; `unknown` operations may take effect at any time after their invocation, or never
//! (a write that timed out may still be applied much later). An unanswered read constrains
//! nothing and is dropped.
//!
//! Ties in time count as overlap: an operation completing at the same millisecond another is
//! invoked may be ordered either way (the simulator's clock is coarser than its event order).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use super::history::{CasResult, History, HistoryOp, OpKind, OpStatus};
use crate::raft::Millis;

/// Why a history is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinError {
    /// No order of one key's operations is both real-time consistent and a valid register run.
    NotLinearizable {
        /// The key.
        key: String,
        /// An operation the deepest attempted order could not place.
        op: Box<HistoryOp>,
        /// How many of the key's operations that order had placed.
        placed: usize,
        /// How many operations of the key must be placed.
        required: usize,
    },
    /// The search for one key exceeded its step budget (the history is too concurrent).
    TooHard {
        /// The key.
        key: String,
        /// The budget.
        steps: u64,
    },
    /// An operation lacks fields its kind needs (a cas without `expected`, a put without a
    /// value).
    Malformed {
        /// The operation.
        op: Box<HistoryOp>,
        /// What is missing.
        why: String,
    },
}

impl fmt::Display for LinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinError::NotLinearizable {
                key,
                op,
                placed,
                required,
            } => write!(
                f,
                "key {key:?} is not linearizable: after ordering {placed} of {required} \
                 operations, none fits before {}",
                op.to_json_line()
            ),
            LinError::TooHard { key, steps } => {
                write!(f, "key {key:?}: gave up after {steps} search steps")
            }
            LinError::Malformed { op, why } => {
                write!(f, "malformed operation {}: {why}", op.to_json_line())
            }
        }
    }
}

impl std::error::Error for LinError {}

/// The default search budget per key.
pub const DEFAULT_STEPS: u64 = 5_000_000;

/// What an operation does to the registers of its component (by their position there), with
/// what it observed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RegOp {
    /// Writes these values (`None`: removes the key) at once: put, delete, mput, mdelete.
    Write(Vec<(usize, Option<String>)>),
    /// A read that returned these values (None: missing) at once: get, mget.
    Read(Vec<(usize, Option<String>)>),
    /// A cas with a known outcome (`Some(true)`: swapped) or unknown outcome (`None`: it did
    /// whatever the register's value dictated).
    Cas {
        key: usize,
        expected: String,
        new: String,
        swapped: Option<bool>,
    },
}

/// The values of a component's registers (`None`: missing).
type State = Vec<Option<String>>;

impl RegOp {
    /// Applies the operation to `state`; `None` when it cannot happen in that state.
    fn step(&self, state: &State) -> Option<State> {
        match self {
            RegOp::Write(w) => {
                let mut next = state.clone();
                for (k, v) in w {
                    next[*k] = v.clone();
                }
                Some(next)
            }
            RegOp::Read(seen) => seen
                .iter()
                .all(|(k, v)| state[*k] == *v)
                .then(|| state.clone()),
            RegOp::Cas {
                key,
                expected,
                new,
                swapped,
            } => {
                // A missing key compares as "".
                let matches = state[*key].as_deref().unwrap_or("") == expected;
                match swapped {
                    Some(s) if *s != matches => None,
                    _ if matches => {
                        let mut next = state.clone();
                        next[*key] = Some(new.clone());
                        Some(next)
                    }
                    _ => Some(state.clone()),
                }
            }
        }
    }
}

struct Op {
    reg: RegOp,
    invoke: Millis,
    /// `None`: no answer (it may take effect any time after invoke, or never).
    complete: Option<Millis>,
    source: usize,
}

/// Checks a whole history, key by key (in key order), with the default budget.
pub fn check(history: &History) -> Result<(), LinError> {
    check_with_budget(history, DEFAULT_STEPS)
}

/// Checks a whole history with a search budget per key (per component of linked keys).
pub fn check_with_budget(history: &History, steps: u64) -> Result<(), LinError> {
    let components = Components::of(history);
    let mut by_comp: BTreeMap<usize, Vec<Op>> = BTreeMap::new();
    for (i, h) in history.ops.iter().enumerate() {
        let Some(first) = h.all_keys().first().copied() else {
            return Err(LinError::Malformed {
                op: Box::new(h.clone()),
                why: "no key".into(),
            });
        };
        let comp = components.of_key(first);
        if let Some(op) = to_op(i, h, |k| components.position(k))? {
            by_comp.entry(comp).or_default().push(op);
        }
    }
    for (comp, ops) in by_comp {
        let keys = components.keys(comp);
        check_key(&keys.join(","), keys.len(), &ops, &history.ops, steps)?;
    }
    Ok(())
}

/// The keys of a history grouped into components: keys one multi-key operation names are in
/// one component. Components are numbered in the order of their smallest key.
struct Components {
    /// Component and position in it, by key.
    of: BTreeMap<String, (usize, usize)>,
    /// The keys of each component, in order.
    members: Vec<Vec<String>>,
}

impl Components {
    fn of(history: &History) -> Self {
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for h in &history.ops {
            for k in h.all_keys() {
                let n = index.len();
                index.entry(k).or_insert(n);
            }
        }
        let mut parent: Vec<usize> = (0..index.len()).collect();
        fn root(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        for h in &history.ops {
            let keys = h.all_keys();
            if let Some(first) = keys.first() {
                let a = root(&mut parent, index[first]);
                for k in &keys[1..] {
                    let b = root(&mut parent, index[k]);
                    parent[b] = a;
                }
            }
        }
        let mut roots: BTreeMap<usize, usize> = BTreeMap::new();
        let mut of = BTreeMap::new();
        let mut members: Vec<Vec<String>> = Vec::new();
        // Keys in order, so components and positions do not depend on the history's order.
        for (k, &i) in &index {
            let r = root(&mut parent, i);
            let n = roots.len();
            let comp = *roots.entry(r).or_insert(n);
            if comp == members.len() {
                members.push(Vec::new());
            }
            of.insert(k.to_string(), (comp, members[comp].len()));
            members[comp].push(k.to_string());
        }
        Components { of, members }
    }

    fn of_key(&self, key: &str) -> usize {
        self.of.get(key).map_or(0, |c| c.0)
    }

    fn position(&self, key: &str) -> usize {
        self.of.get(key).map_or(0, |c| c.1)
    }

    fn keys(&self, comp: usize) -> &[String] {
        &self.members[comp]
    }
}

fn to_op(i: usize, h: &HistoryOp, pos: impl Fn(&str) -> usize) -> Result<Option<Op>, LinError> {
    let malformed = |why: &str| LinError::Malformed {
        op: Box::new(h.clone()),
        why: why.to_string(),
    };
    if h.status == OpStatus::Fail {
        return Ok(None);
    }
    let answered = h.status == OpStatus::Ok;
    let key = pos(&h.key);
    let reg = match h.op {
        OpKind::Put => match &h.value {
            Some(Some(v)) => RegOp::Write(vec![(key, Some(v.clone()))]),
            _ => return Err(malformed("a put needs a value")),
        },
        OpKind::Delete => RegOp::Write(vec![(key, None)]),
        OpKind::Get | OpKind::Mget if !answered => return Ok(None),
        OpKind::Get => match &h.value {
            Some(v) => RegOp::Read(vec![(key, v.clone())]),
            None => return Err(malformed("an answered get needs a value (or null)")),
        },
        OpKind::Mput => match &h.entries {
            Some(e) if !e.is_empty() => {
                RegOp::Write(e.iter().map(|(k, v)| (pos(k), Some(v.clone()))).collect())
            }
            _ => return Err(malformed("an mput needs entries")),
        },
        OpKind::Mdelete => match &h.keys {
            Some(ks) if !ks.is_empty() => RegOp::Write(ks.iter().map(|k| (pos(k), None)).collect()),
            _ => return Err(malformed("an mdelete needs keys")),
        },
        OpKind::Mget => match (&h.keys, &h.values) {
            (Some(ks), Some(vs)) if !ks.is_empty() && ks.iter().all(|k| vs.contains_key(k)) => {
                RegOp::Read(vs.iter().map(|(k, v)| (pos(k), v.clone())).collect())
            }
            _ => {
                return Err(malformed(
                    "an answered mget needs keys and a value for each",
                ));
            }
        },
        OpKind::Cas => match (&h.expected, &h.new) {
            (Some(expected), Some(new)) => RegOp::Cas {
                key,
                expected: expected.clone(),
                new: new.clone(),
                swapped: if answered {
                    match h.result {
                        Some(CasResult::Ok) => Some(true),
                        Some(CasResult::Failed) => Some(false),
                        None => return Err(malformed("an answered cas needs a result")),
                    }
                } else {
                    None
                },
            },
            _ => return Err(malformed("a cas needs expected and new")),
        },
    };
    let complete = if answered {
        match h.complete {
            Some(c) if c >= h.invoke => Some(c),
            _ => return Err(malformed("an answered operation needs complete >= invoke")),
        }
    } else {
        None
    };
    Ok(Some(Op {
        reg,
        invoke: h.invoke,
        complete,
        source: i,
    }))
}

/// One call or return in the doubly linked event list.
#[derive(Clone, Copy, Debug)]
struct Node {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
    /// For a call: the index of its return node.
    partner: usize,
}

/// The set of placed operations as the memo sees it: a 128-bit Zobrist hash (the xor of one
/// fixed random word per placed operation), kept up to date in O(1) per placement. A bitset
/// of the operations costs O(n) to copy and hash at every step, which made a 342,000-operation
/// history (a 30-minute Jepsen run) take longer than the run itself; two sets sharing a hash
/// is a 2^-128 event, and even then only prunes a branch (a false "not linearizable", never a
/// false pass).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Placed(u128);

impl Placed {
    /// Adds or removes operation `i` (xor is its own inverse).
    fn toggle(&mut self, i: usize) {
        self.0 ^= zobrist(i);
    }
}

/// Operation `i`'s fixed random word: splitmix64 of its index, twice (deterministic, so a
/// check does the same work on every run and platform).
fn zobrist(i: usize) -> u128 {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let i = i as u64;
    (u128::from(splitmix(2 * i)) << 64) | u128::from(splitmix(2 * i + 1))
}

fn check_key(
    key: &str,
    width: usize,
    ops: &[Op],
    all: &[HistoryOp],
    budget: u64,
) -> Result<(), LinError> {
    let n = ops.len();
    let required = ops.iter().filter(|o| o.complete.is_some()).count();
    // Events: (time, kind, op). Calls sort before returns at the same time (ties overlap);
    // unanswered operations return after everything.
    let mut events: Vec<(Millis, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        events.push((o.invoke, 0, i));
        events.push((o.complete.unwrap_or(Millis::MAX), 1, i));
    }
    events.sort();
    // Node 0 is the head sentinel; events are nodes 1..=2n; 2n+1 is the tail sentinel.
    let tail = 2 * n + 1;
    let mut list: Vec<Node> = Vec::with_capacity(2 * n + 2);
    list.push(Node {
        op: usize::MAX,
        is_call: false,
        prev: 0,
        next: 1,
        partner: 0,
    });
    let mut ret_node = vec![0usize; n];
    for (k, (_, kind, op)) in events.iter().enumerate() {
        let idx = k + 1;
        list.push(Node {
            op: *op,
            is_call: *kind == 0,
            prev: idx - 1,
            next: idx + 1,
            partner: 0,
        });
        if *kind == 1 {
            ret_node[*op] = idx;
        }
    }
    list.push(Node {
        op: usize::MAX,
        is_call: false,
        prev: 2 * n,
        next: tail,
        partner: 0,
    });
    for node in list.iter_mut().take(2 * n + 1).skip(1) {
        if node.is_call {
            node.partner = ret_node[node.op];
        }
    }

    let lift = |list: &mut Vec<Node>, call: usize| {
        let ret = list[call].partner;
        let (p, nx) = (list[call].prev, list[call].next);
        list[p].next = nx;
        list[nx].prev = p;
        let (p, nx) = (list[ret].prev, list[ret].next);
        list[p].next = nx;
        list[nx].prev = p;
    };
    let unlift = |list: &mut Vec<Node>, call: usize| {
        let ret = list[call].partner;
        let (p, nx) = (list[ret].prev, list[ret].next);
        list[p].next = ret;
        list[nx].prev = ret;
        let (p, nx) = (list[call].prev, list[call].next);
        list[p].next = call;
        list[nx].prev = call;
    };

    let mut state: State = vec![None; width];
    let mut placed = Placed::default();
    let mut placed_required = 0usize;
    let mut cache: HashSet<(Placed, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut best: (usize, usize) = (0, 0); // (placed ok ops, blocking op)
    let mut steps = 0u64;
    let mut entry = list[0].next;
    loop {
        steps += 1;
        if steps > budget {
            return Err(LinError::TooHard {
                key: key.to_string(),
                steps: budget,
            });
        }
        if entry == tail {
            return Ok(());
        }
        let node = list[entry];
        if node.is_call {
            let op = &ops[node.op];
            if let Some(next_state) = op.reg.step(&state) {
                let mut with = placed;
                with.toggle(node.op);
                if cache.insert((with, next_state.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, next_state)));
                    placed = with;
                    if op.complete.is_some() {
                        placed_required += 1;
                    }
                    lift(&mut list, entry);
                    entry = list[0].next;
                    continue;
                }
            }
            entry = node.next;
        } else {
            // A return whose operation is not placed yet.
            if ops[node.op].complete.is_none() {
                // Only unanswered operations are left unplaced: they never took effect.
                return Ok(());
            }
            if placed_required >= best.0 {
                best = (placed_required, node.op);
            }
            let Some((call, prev_state)) = stack.pop() else {
                let blocking = &ops[best.1];
                return Err(LinError::NotLinearizable {
                    key: key.to_string(),
                    op: Box::new(all[blocking.source].clone()),
                    placed: best.0,
                    required,
                });
            };
            state = prev_state;
            let op = list[call].op;
            placed.toggle(op);
            if ops[op].complete.is_some() {
                placed_required -= 1;
            }
            unlift(&mut list, call);
            entry = list[call].next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn op(
        client: &str,
        kind: OpKind,
        value: Option<Option<&str>>,
        invoke: Millis,
        complete: Option<Millis>,
    ) -> HistoryOp {
        HistoryOp {
            client: client.into(),
            op: kind,
            key: "k".into(),
            keys: None,
            entries: None,
            values: None,
            value: value.map(|v| v.map(str::to_string)),
            expected: None,
            new: None,
            result: None,
            invoke,
            complete,
            status: if complete.is_some() {
                OpStatus::Ok
            } else {
                OpStatus::Unknown
            },
            stale: false,
            index: None,
            node: None,
            applied: None,
            min_index: None,
        }
    }
    fn put(c: &str, v: &str, i: Millis, r: Millis) -> HistoryOp {
        op(c, OpKind::Put, Some(Some(v)), i, Some(r))
    }
    fn get(c: &str, v: Option<&str>, i: Millis, r: Millis) -> HistoryOp {
        op(c, OpKind::Get, Some(v), i, Some(r))
    }
    fn cas(c: &str, exp: &str, new: &str, ok: bool, i: Millis, r: Millis) -> HistoryOp {
        HistoryOp {
            expected: Some(exp.into()),
            new: Some(new.into()),
            result: Some(if ok { CasResult::Ok } else { CasResult::Failed }),
            ..op(c, OpKind::Cas, None, i, Some(r))
        }
    }
    fn hist(ops: Vec<HistoryOp>) -> History {
        History { ops }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn accepts_sequential_and_concurrent_histories() {
        assert_eq!(check(&hist(vec![])), Ok(()));
        // Sequential.
        check(&hist(vec![
            get("c1", None, 0, 1),
            put("c1", "a", 2, 3),
            get("c2", Some("a"), 4, 5),
            op("c1", OpKind::Delete, None, 6, Some(7)),
            get("c2", None, 8, 9),
        ]))
        .expect("sequential");
        // A read overlapping a write may see either value.
        for seen in [None, Some("a")] {
            check(&hist(vec![put("c1", "a", 0, 10), get("c2", seen, 2, 5)]))
                .expect("overlapping read");
        }
        // Two overlapping writes, then reads agreeing on one of them as the last.
        check(&hist(vec![
            put("c1", "a", 0, 10),
            put("c2", "b", 1, 9),
            get("c3", Some("a"), 11, 12),
            get("c1", Some("a"), 13, 14),
        ]))
        .expect("overlapping writes");
        // Ties in time count as overlap.
        check(&hist(vec![put("c1", "a", 0, 5), get("c2", None, 5, 6)])).expect("tie");
        // cas against a missing key matches "".
        check(&hist(vec![
            cas("c1", "", "x", true, 0, 1),
            cas("c2", "", "y", false, 2, 3),
            get("c1", Some("x"), 4, 5),
        ]))
        .expect("cas");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rejects_a_stale_read_after_a_completed_write() {
        let err = check(&hist(vec![
            put("c1", "a", 0, 5),
            put("c1", "b", 6, 10),
            get("c2", Some("a"), 11, 12),
        ]))
        .expect_err("stale read");
        match err {
            LinError::NotLinearizable {
                key, op, required, ..
            } => {
                assert_eq!(key, "k");
                assert_eq!(required, 3);
                assert_eq!(op.op, OpKind::Get);
            }
            other => panic!("{other}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rejects_a_lost_acknowledged_write() {
        // The write was acknowledged, yet a later read sees the key missing.
        let err = check(&hist(vec![put("c1", "a", 0, 5), get("c2", None, 6, 7)]));
        assert!(
            matches!(err, Err(LinError::NotLinearizable { .. })),
            "{err:?}"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rejects_two_successful_cas_from_the_same_value() {
        let err = check(&hist(vec![
            put("c1", "a", 0, 1),
            cas("c1", "a", "b", true, 2, 10),
            cas("c2", "a", "c", true, 3, 9),
        ]));
        assert!(
            matches!(err, Err(LinError::NotLinearizable { .. })),
            "{err:?}"
        );
        // One succeeding and one failing is fine.
        check(&hist(vec![
            put("c1", "a", 0, 1),
            cas("c1", "a", "b", true, 2, 10),
            cas("c2", "a", "c", false, 3, 9),
        ]))
        .expect("one cas wins");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn unknown_writes_may_happen_late_or_never_and_failed_ones_never() {
        let unknown = |v: &str, i| op("c1", OpKind::Put, Some(Some(v)), i, None);
        // Never.
        check(&hist(vec![unknown("a", 0), get("c2", None, 50, 60)])).expect("never");
        // Much later than its invocation, after other operations completed.
        check(&hist(vec![
            unknown("a", 0),
            get("c2", None, 50, 60),
            put("c2", "b", 61, 70),
            get("c2", Some("a"), 100, 110),
        ]))
        .expect("late");
        // But not before it was invoked.
        let err = check(&hist(vec![get("c2", Some("a"), 0, 10), unknown("a", 20)]));
        assert!(err.is_err(), "took effect before its invocation");
        // A failed write never happened.
        let mut failed = put("c1", "a", 0, 5);
        failed.status = OpStatus::Fail;
        failed.complete = None;
        let err = check(&hist(vec![failed, get("c2", Some("a"), 10, 11)]));
        assert!(err.is_err(), "a failed write was observed");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keys_are_checked_independently_and_malformed_ops_reported() {
        let mut other = put("c1", "z", 0, 1);
        other.key = "other".into();
        check(&hist(vec![
            other.clone(),
            put("c1", "a", 0, 1),
            get("c1", Some("a"), 2, 3),
        ]))
        .expect("independent keys");
        let mut bad = put("c1", "a", 0, 1);
        bad.value = None;
        assert!(matches!(
            check(&hist(vec![bad])),
            Err(LinError::Malformed { .. })
        ));
    }

    fn mput(c: &str, kvs: &[(&str, &str)], i: Millis, r: Option<Millis>) -> HistoryOp {
        HistoryOp {
            key: String::new(),
            entries: Some(
                kvs.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..op(c, OpKind::Mput, None, i, r)
        }
    }
    fn mget(c: &str, kvs: &[(&str, Option<&str>)], i: Millis, r: Millis) -> HistoryOp {
        HistoryOp {
            key: String::new(),
            keys: Some(kvs.iter().map(|(k, _)| k.to_string()).collect()),
            values: Some(
                kvs.iter()
                    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                    .collect(),
            ),
            ..op(c, OpKind::Mget, None, i, Some(r))
        }
    }
    fn at(key: &str, mut o: HistoryOp) -> HistoryOp {
        o.key = key.into();
        o
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn multi_key_operations_are_atomic() {
        // An mget overlapping an mput sees all of it or none of it.
        for seen in [(None, None), (Some("1"), Some("1"))] {
            check(&hist(vec![
                mput("c1", &[("a", "1"), ("b", "1")], 0, Some(10)),
                mget("c2", &[("a", seen.0), ("b", seen.1)], 2, 5),
            ]))
            .expect("all or nothing");
        }
        // Half of it is a torn write.
        let err = check(&hist(vec![
            mput("c1", &[("a", "1"), ("b", "1")], 0, Some(10)),
            mget("c2", &[("a", Some("1")), ("b", None)], 2, 5),
        ]));
        assert!(
            matches!(&err, Err(LinError::NotLinearizable { key, .. }) if key == "a,b"),
            "{err:?}"
        );
        // Torn across single-key reads too: a then b read in sequence, b new but a old.
        let err = check(&hist(vec![
            mput("c1", &[("a", "1"), ("b", "1")], 0, Some(10)),
            at("b", get("c2", Some("1"), 1, 2)),
            at("a", get("c2", None, 3, 4)),
        ]));
        assert!(err.is_err(), "{err:?}");
        // An mdelete removes every key at once; keys outside any multi-key op stay separate.
        let mdel = HistoryOp {
            key: String::new(),
            keys: Some(vec!["a".into(), "b".into()]),
            ..op("c1", OpKind::Mdelete, None, 11, Some(12))
        };
        check(&hist(vec![
            mput("c1", &[("a", "1"), ("b", "1")], 0, Some(10)),
            mdel.clone(),
            mget("c2", &[("a", None), ("b", None)], 13, 14),
            at("z", put("c3", "z", 0, 1)),
        ]))
        .expect("mdelete");
        let err = check(&hist(vec![
            mput("c1", &[("a", "1"), ("b", "1")], 0, Some(10)),
            mdel,
            mget("c2", &[("a", None), ("b", Some("1"))], 13, 14),
        ]));
        assert!(err.is_err(), "{err:?}");
        // An unknown mput may land late, but whole.
        check(&hist(vec![
            mput("c1", &[("a", "1"), ("b", "1")], 0, None),
            mget("c2", &[("a", None), ("b", None)], 5, 6),
            mget("c2", &[("a", Some("1")), ("b", Some("1"))], 7, 8),
        ]))
        .expect("late mput");
        // An mget missing a value for one of its keys is malformed.
        let mut bad = mget("c2", &[("a", None)], 0, 1);
        bad.keys = Some(vec!["a".into(), "b".into()]);
        assert!(matches!(
            check(&hist(vec![bad])),
            Err(LinError::Malformed { .. })
        ));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn many_concurrent_operations_stay_fast() {
        // 8 clients x 25 rounds of overlapping writes and reads of the last value.
        let mut ops = Vec::new();
        let mut last = None::<String>;
        for round in 0..25u64 {
            let t = round * 100;
            for c in 0..8u64 {
                let v = format!("c{c}-{round}");
                ops.push(put(&format!("c{c}"), &v, t + c, t + 50 + c));
            }
            let v = format!("c7-{round}");
            ops.push(get("r", Some(&v), t + 60, t + 70));
            last = Some(v);
        }
        let _ = last;
        check_with_budget(&hist(ops), 2_000_000).expect("linearizable, within budget");
    }
}

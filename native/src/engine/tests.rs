//! The engines against each other and the disk engine across restarts.

use std::path::Path;
use std::sync::Arc;

use raftkv_core::kvsm::SessionLimits;
use raftkv_core::kvsnap::{Encoder, Header};
use raftkv_core::raft::{Config, Host, Index, Role};
use raftkv_core::{ApplyEntry, Command, NodeId, OpType};

use super::disk::{DiskEngine, DiskOptions, FILE};
use super::{Engine, MemoryEngine};
use crate::disk::open_stores;
use crate::shared_sm::SharedSm;

/// A small deterministic generator (no dependency, same sequence everywhere).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random command over a few keys and clients: retries, seqs past a session, invalid ones.
fn random_command(r: &mut Rng, seqs: &mut [u64; 4]) -> Command {
    let key = format!("k{}", r.below(8));
    let value = format!("v{}", r.below(5));
    let mut cmd = match r.below(6) {
        0 | 1 => Command::put(key, value),
        2 => Command::delete(key),
        3 => Command::cas(key, format!("v{}", r.below(5)), value),
        4 => Command {
            op: OpType::BatchPut,
            entries: (0..r.below(3) + 1)
                .map(|i| raftkv_core::Entry {
                    key: format!("k{}", (r.below(8) + i) % 8),
                    value: format!("b{i}"),
                })
                .collect(),
            ..Command::new(OpType::BatchPut)
        },
        _ => Command {
            keys: (0..r.below(3) + 1).map(|i| format!("k{i}")).collect(),
            ..Command::new(OpType::BatchDelete)
        },
    };
    if r.below(10) == 0 {
        // Invalid: an empty key.
        cmd.key.clear();
        cmd.op = OpType::Put;
    }
    match r.below(4) {
        0 => cmd,
        c => {
            let c = c as usize;
            let seq = match r.below(5) {
                // A retry of an applied seq.
                0 => seqs[c].max(1),
                // A seq past a session the store may have dropped.
                1 => seqs[c] + 3,
                _ => seqs[c] + 1,
            };
            seqs[c] = seqs[c].max(seq);
            cmd.with_client(format!("c{c}"), seq)
        }
    }
}

fn snapshot_bytes(e: &dyn Engine) -> Vec<u8> {
    let mut out = Vec::new();
    e.snapshot_view().unwrap().write_to(&mut out).unwrap();
    out
}

fn disk_with(dir: &Path, opts: DiskOptions) -> DiskEngine {
    DiskEngine::open(&dir.join(FILE), opts).unwrap()
}

fn disk(dir: &Path, limits: SessionLimits) -> DiskEngine {
    disk_with(
        dir,
        DiskOptions {
            limits,
            ..DiskOptions::default()
        },
    )
}

/// Applies `n` random batches to both engines and checks they stay equal after each.
fn apply_same_batches(seed: u64, mem: &dyn Engine, disk: &dyn Engine, n: usize) {
    let mut r = Rng(seed | 1);
    let mut seqs = [0u64; 4];
    let mut index = mem.applied_index();
    let mut time = mem.log_time();
    for _ in 0..n {
        let cmds: Vec<Option<Command>> = (0..r.below(6) + 1)
            .map(|_| (r.below(8) != 0).then(|| random_command(&mut r, &mut seqs)))
            .collect();
        let entries: Vec<ApplyEntry<'_, Command>> = cmds
            .iter()
            .map(|c| {
                index += 1;
                // Leaders' clocks differ: entry times sometimes go back.
                time = (time + r.below(40)).saturating_sub(r.below(15));
                ApplyEntry {
                    index,
                    time,
                    cmd: c.as_ref(),
                }
            })
            .collect();
        let a = mem.apply_batch(&entries).unwrap();
        let b = disk.apply_batch(&entries).unwrap();
        assert_eq!(a, b, "seed {seed}: replies differ");
        assert_eq!(mem.applied_index(), disk.applied_index());
        assert_eq!(mem.log_time(), disk.log_time());
        assert_eq!(mem.sessions().unwrap(), disk.sessions().unwrap());
        assert_eq!(mem.entries().unwrap(), disk.entries().unwrap());
    }
    assert_eq!(
        snapshot_bytes(mem),
        snapshot_bytes(disk),
        "seed {seed}: snapshot bytes differ"
    );
}

#[test]
fn the_disk_engine_applies_random_batches_exactly_like_the_memory_engine() {
    let limits = SessionLimits { ttl: 60, max: 3 };
    for seed in 1..=12u64 {
        let dir = tempfile::tempdir().unwrap();
        let mem = MemoryEngine::new(limits);
        let d = disk(dir.path(), limits);
        apply_same_batches(seed, &mem, &d, 40);
        // Reads agree too.
        for start in ["", "k3", "k9"] {
            for end in [None, Some("k5"), Some("k0")] {
                assert_eq!(
                    mem.range(start, end, 3).unwrap(),
                    d.range(start, end, 3).unwrap(),
                    "range {start:?}..{end:?}"
                );
            }
        }
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        assert_eq!(mem.mget(&keys).unwrap(), d.mget(&keys).unwrap());
        assert_eq!(mem.len().unwrap(), d.len().unwrap());
        assert_eq!(mem.session("c1").unwrap(), d.session("c1").unwrap());
    }
}

#[test]
fn a_reopened_disk_engine_reports_its_applied_index_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemoryEngine::new(SessionLimits::default());
    let (applied, snap) = {
        let d = disk(dir.path(), SessionLimits::default());
        apply_same_batches(7, &mem, &d, 30);
        (d.applied_index(), snapshot_bytes(&d))
    };
    assert!(applied > 0);
    let d = disk(dir.path(), SessionLimits::default());
    assert_eq!(d.applied_index(), applied);
    assert_eq!(d.log_time(), mem.log_time());
    assert_eq!(snapshot_bytes(&d), snap);
    assert_eq!(d.entries_applied_since_open(), 0);
    // And it goes on applying from there like the memory engine.
    apply_same_batches(8, &mem, &d, 10);
}

/// A disk engine whose commits are never fsynced on their own (the hour never passes).
fn lazy_disk(dir: &Path) -> DiskEngine {
    disk_with(
        dir,
        DiskOptions {
            durable_every: std::time::Duration::from_secs(3600),
            ..DiskOptions::default()
        },
    )
}

/// What a crash leaves of the open engine in `dir`: a copy of its database file as it is now
/// (redb rolls a copy back to its last fsynced commit when it opens it, as after a crash),
/// opened from `crashed`.
fn crash_image(dir: &Path, crashed: &Path) -> DiskEngine {
    std::fs::copy(dir.join(FILE), crashed.join(FILE)).unwrap();
    lazy_disk(crashed)
}

#[test]
fn a_crash_keeps_the_disk_engine_at_or_past_its_last_snapshot_view() {
    // The host stores a snapshot at the view's index and cuts the log behind it: an engine
    // that a crash took back before that index could only be rebuilt by installing the whole
    // snapshot again, which makes a restart's time grow with the state.
    let (dir, crashed, control) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let d = lazy_disk(dir.path());
    let put = |i: Index| {
        let cmd = Command::put(format!("k{i}"), "v");
        let e = [ApplyEntry {
            index: i,
            time: i,
            cmd: Some(&cmd),
        }];
        d.apply_batch(&e).unwrap();
    };
    (1..=20).for_each(put);
    // The control: without a view, a crash takes back every commit since the open.
    assert_eq!(crash_image(dir.path(), control.path()).applied_index(), 0);
    let at = d.snapshot_view().unwrap().index();
    assert_eq!(at, 20);
    (21..=25).for_each(put);
    let after = crash_image(dir.path(), crashed.path());
    assert!(
        after.applied_index() >= at,
        "a crash took the engine back to {} behind its snapshot view at {at}",
        after.applied_index()
    );
}

#[test]
fn snapshots_move_between_engines_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let limits = SessionLimits::default();
    let mem = MemoryEngine::new(limits);
    let d = disk(dir.path(), limits);
    apply_same_batches(3, &mem, &d, 25);
    let from_disk = snapshot_bytes(&d);
    let index = d.applied_index();

    let mem2 = MemoryEngine::new(limits);
    mem2.install(index, &mut from_disk.as_slice()).unwrap();
    assert_eq!(snapshot_bytes(&mem2), from_disk);

    let dir2 = tempfile::tempdir().unwrap();
    let d2 = disk(dir2.path(), limits);
    // Something to replace: an install drops the old state.
    put_at(&d2, 1, 0, "old", "x");
    d2.install(index, &mut snapshot_bytes(&mem).as_slice())
        .unwrap();
    assert_eq!(snapshot_bytes(&d2), from_disk);
    assert_eq!(d2.applied_index(), index);
    assert_eq!(d2.get("old").unwrap(), None);
}

/// Applies one put at `index` and `time`.
fn put_at(e: &dyn Engine, index: Index, time: u64, key: &str, value: &str) {
    e.apply_batch(&[ApplyEntry {
        index,
        time,
        cmd: Some(&Command::put(key, value)),
    }])
    .unwrap();
}

/// A snapshot of `n` keys at `index`.
fn big_snapshot(index: Index, n: usize) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new(), Header { index, log_time: 5 }).unwrap();
    for i in 0..n {
        e.kv(&format!("key{i:08}"), "value").unwrap();
    }
    e.finish().unwrap()
}

#[test]
fn a_snapshot_larger_than_one_install_batch_installs_whole_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let snap = big_snapshot(42, 50_000);
    {
        let d = disk(dir.path(), SessionLimits::default());
        d.install(42, &mut snap.as_slice()).unwrap();
        assert_eq!(d.len().unwrap(), 50_000);
        assert_eq!(snapshot_bytes(&d), snap);
    }
    let d = disk(dir.path(), SessionLimits::default());
    assert_eq!(d.applied_index(), 42);
    assert_eq!(snapshot_bytes(&d), snap);
}

#[test]
fn an_install_cut_off_after_its_first_batch_leaves_the_old_state_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let snap = big_snapshot(9, 50_000);
    let before = {
        let d = disk(dir.path(), SessionLimits::default());
        put_at(&d, 1, 0, "a", "1");
        let before = snapshot_bytes(&d);
        let cut = &snap[..snap.len() / 2];
        assert!(d.install(9, &mut &cut[..]).is_err());
        assert_eq!(d.applied_index(), 1, "a partial install must not count");
        assert_eq!(snapshot_bytes(&d), before, "the old state still serves");
        before
    };
    let d = disk(dir.path(), SessionLimits::default());
    assert_eq!(d.applied_index(), 1);
    assert_eq!(snapshot_bytes(&d), before);
    d.install(9, &mut snap.as_slice()).unwrap();
    assert_eq!(d.applied_index(), 9);
    assert_eq!(snapshot_bytes(&d), snap);
}

/// A crash while an install builds its database leaves that file behind: the next open
/// deletes it and serves the state it was to replace.
#[test]
fn a_crash_mid_install_leaves_the_old_state_and_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let d = disk(dir.path(), SessionLimits::default());
        put_at(&d, 1, 0, "a", "1");
        snapshot_bytes(&d)
    };
    // What a crash mid-build leaves: a database holding part of the new state.
    let partial = dir.path().join(format!("{FILE}.install.tmp"));
    {
        let other = tempfile::tempdir().unwrap();
        let d = disk(other.path(), SessionLimits::default());
        d.install(9, &mut big_snapshot(9, 100).as_slice()).unwrap();
        drop(d);
        std::fs::copy(other.path().join(FILE), &partial).unwrap();
    }
    let d = disk(dir.path(), SessionLimits::default());
    assert!(!partial.exists(), "the unfinished install was not removed");
    assert_eq!(d.applied_index(), 1);
    assert_eq!(snapshot_bytes(&d), before);
}

/// An install replaces the file under an engine that keeps serving: reads, applies and
/// snapshot views after it see the new state, and a view taken before it still reads the old
/// one (its transaction keeps the old file's pages).
#[test]
fn an_install_swaps_the_state_under_a_live_engine_and_an_open_view() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), SessionLimits::default());
    put_at(&d, 1, 0, "old", "1");
    let old = snapshot_bytes(&d);
    let view = d.snapshot_view().unwrap();
    let snap = big_snapshot(40, 30_000);
    d.install(40, &mut snap.as_slice()).unwrap();
    let mut from_view = Vec::new();
    view.write_to(&mut from_view).unwrap();
    assert_eq!(
        from_view, old,
        "a view taken before the install changed under it"
    );
    assert_eq!(d.get("old").unwrap(), None);
    assert_eq!(d.get("key00000007").unwrap().as_deref(), Some("value"));
    put_at(&d, 41, 6, "new", "2");
    assert_eq!(d.len().unwrap(), 30_001);
    drop(d);
    let d = disk(dir.path(), SessionLimits::default());
    assert_eq!(d.applied_index(), 41);
    assert_eq!(d.get("new").unwrap().as_deref(), Some("2"));
}

#[test]
fn a_bad_snapshot_that_fits_one_batch_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), SessionLimits::default());
    put_at(&d, 1, 0, "a", "1");
    let before = snapshot_bytes(&d);
    let snap = big_snapshot(5, 10);
    assert!(d.install(5, &mut &snap[..snap.len() - 3]).is_err());
    assert!(d.install(6, &mut snap.as_slice()).is_err(), "wrong index");
    assert_eq!(d.applied_index(), 1);
    assert_eq!(snapshot_bytes(&d), before);
}

/// Drives a lone node `n1` over the data dir `dir` with the disk engine until it leads and has
/// applied everything it has; returns it.
fn lone_node(dir: &Path, now: &mut u64) -> Host<SharedSm> {
    let mut cfg = Config::new(NodeId::from("n1"), vec![NodeId::from("n1")]);
    // Snapshots (and log compaction) happen during the test too.
    cfg.snapshot_threshold = 16;
    cfg.snapshot_trailing = 4;
    let stores = open_stores(dir).unwrap();
    let engine: Arc<dyn Engine> = Arc::new(disk(dir, SessionLimits::default()));
    let mut host = Host::new(cfg, stores, SharedSm::with_engine(engine), 1, *now).unwrap();
    let mut out = Vec::new();
    for _ in 0..100 {
        if host.node().role() == Role::Leader
            && host.node().last_applied() >= host.node().status().last_log_index
        {
            return host;
        }
        *now += 50;
        host.tick(*now, &mut out).unwrap();
    }
    panic!("a lone node did not become leader");
}

#[test]
fn a_restart_with_the_disk_engine_applies_no_entry_it_had_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut now = 0;
    let mut out = Vec::new();
    let applied = {
        let mut host = lone_node(dir.path(), &mut now);
        for i in 0..40 {
            host.propose(now, Command::put(format!("k{i}"), i.to_string()), &mut out)
                .unwrap();
        }
        let engine = Arc::clone(host.state_machine().engine());
        assert!(engine.applied_index() >= 40);
        assert!(host.node().status().snapshot_index > 0, "no snapshot taken");
        engine.applied_index()
    };
    let host = lone_node(dir.path(), &mut now);
    let engine = host.state_machine().engine();
    assert!(
        engine.applied_index() > applied,
        "the new term's no-op applies"
    );
    // Only entries after what the engine had persisted were applied: the new leader's no-op.
    assert_eq!(
        engine.entries_applied_since_open(),
        engine.applied_index() - applied,
        "entries up to {applied} were applied again"
    );
    assert_eq!(engine.len().unwrap(), 40);
    assert_eq!(engine.get("k39").unwrap().as_deref(), Some("39"));
}

/// A follower catching up applies everything committed at once: the disk engine commits that
/// in transactions of bounded size (redb keeps a transaction's dirty pages in memory), with the
/// same result as the memory engine and the applied index at the last entry.
#[test]
fn a_large_apply_batch_commits_in_bounded_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), SessionLimits::default());
    let mem = MemoryEngine::new(SessionLimits::default());
    let value = "v".repeat(1 << 20);
    let cmds: Vec<Command> = (0..12)
        .map(|i| Command::put(format!("big{i}"), value.clone()))
        .collect();
    let batch: Vec<ApplyEntry<'_, Command>> = cmds
        .iter()
        .zip(1..)
        .map(|(cmd, index)| ApplyEntry {
            index,
            time: 0,
            cmd: Some(cmd),
        })
        .collect();
    assert_eq!(
        d.apply_batch(&batch).unwrap(),
        mem.apply_batch(&batch).unwrap()
    );
    let txns = d.apply_transactions();
    assert!(
        (3..12).contains(&txns),
        "12 MiB of commands went in {txns} transactions"
    );
    assert_eq!(d.applied_index(), 12);
    assert_eq!(snapshot_bytes(&d), snapshot_bytes(&mem));
    // A small batch is still one transaction.
    put_at(&d, 13, 0, "small", "1");
    assert_eq!(d.apply_transactions(), txns + 1);
}

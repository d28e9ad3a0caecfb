//! The stored configuration: `<data dir>/cluster`, one frame holding JSON
//! `{"version":1,"bootstrap":[{"id","addr"}...],"addrs":{id: addr}}`, replaced atomically (temp
//! file, fsync, rename, fsync of the directory) like the other files in the data dir.
//!
//! - `bootstrap` is the configuration the cluster was created with: `--peers` (or this node
//!   alone without it) on the node's first start, empty for a node that joined a running
//!   cluster with `--join`. It is written once, before the node serves, and from then on it is
//!   what the Raft node starts from ([`Config::voters`](raftkv_core::raft::Config::voters)):
//!   the stored configuration wins over a `--peers` that differs (with a warning), so a typo on
//!   a restart cannot turn a member into the founder of another cluster.
//! - `addrs` is the last known address of every member ([`crate::peers::PeerTable`] saves it
//!   whenever it changes), so a restarted node reaches members that joined after it started.
//!
//! Configurations that took effect since (learners, promotions, removals) live in the Raft log
//! and the snapshot, not here: after the first start this file only says where the node began.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use raftkv_core::NodeId;
use raftkv_core::raft::StorageError;
use serde::{Deserialize, Serialize};

use crate::config::{Peer, ServerConfig};
use crate::disk::{atomic_write, frame, read_json_frame, read_optional};

/// The file name inside the data dir.
pub const FILE: &str = "cluster";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Ids and addresses of a cluster: anything bigger is a garbage length.
const MAX_LEN: usize = 1024 * 1024;

/// The content of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCluster {
    /// The format version.
    pub version: u32,
    /// The voters the cluster was created with, with their addresses; empty for a node that
    /// joined a running cluster.
    pub bootstrap: Vec<Peer>,
    /// The last known address of every member, this node included.
    #[serde(default)]
    pub addrs: BTreeMap<NodeId, String>,
}

impl StoredCluster {
    /// The ids of the bootstrap voters, sorted (what the Raft node starts from).
    pub fn voters(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.bootstrap.iter().map(|p| p.id.clone()).collect();
        v.sort();
        v
    }
}

/// Reads the stored configuration of `dir`, if there is one. A damaged file is corruption (it
/// is only ever replaced atomically) and is reported, never guessed around.
pub fn load(dir: &Path) -> Result<Option<StoredCluster>, StorageError> {
    let path = dir.join(FILE);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let stored: StoredCluster = read_json_frame(&path, &bytes, MAX_LEN)?;
    if stored.version != VERSION {
        return Err(crate::disk::corrupt(
            &path,
            format!(
                "format version {} (this build reads {VERSION})",
                stored.version
            ),
        ));
    }
    Ok(Some(stored))
}

/// Replaces the stored configuration of `dir` with `c`, durably, before returning.
pub fn save(dir: &Path, c: &StoredCluster) -> Result<(), StorageError> {
    let json = serde_json::to_vec(c).map_err(|e| StorageError::Io(e.to_string()))?;
    atomic_write(dir, FILE, &frame::encode(&json)?)
}

/// Where a running node saves its address table: the file, with the bootstrap it was created
/// with kept as it is.
#[derive(Clone, Debug)]
pub struct ClusterStore {
    dir: PathBuf,
    bootstrap: Vec<Peer>,
}

impl ClusterStore {
    /// Saves `addrs` beside the unchanged bootstrap configuration.
    pub fn save_addrs(&self, addrs: &BTreeMap<NodeId, String>) -> Result<(), StorageError> {
        let c = StoredCluster {
            version: VERSION,
            bootstrap: self.bootstrap.clone(),
            addrs: addrs.clone(),
        };
        save(&self.dir, &c)
    }
}

/// What a node starts from, once the stored configuration and the command line are reconciled.
#[derive(Debug)]
pub struct Boot {
    /// The configuration to start the Raft node with (empty: joining).
    pub cluster: StoredCluster,
    /// Where the address table is saved.
    pub store: ClusterStore,
}

/// Reads the data dir's stored configuration, reconciles it with the command line (logging
/// why the stored one wins where they differ) and writes it, fsynced, when it is new or its
/// addresses changed. Call before the node serves. `bound` is the address the node listens on.
pub fn prepare(config: &ServerConfig, bound: &str) -> Result<Boot, StorageError> {
    let dir = &config.data_dir;
    let stored = load(dir)?;
    let r = reconcile(stored.as_ref(), config, bound);
    for w in &r.warnings {
        tracing::warn!(file = %dir.join(FILE).display(), "{w}");
    }
    if stored.as_ref() != Some(&r.cluster) {
        save(dir, &r.cluster)?;
    }
    Ok(Boot {
        store: ClusterStore {
            dir: dir.clone(),
            bootstrap: r.cluster.bootstrap.clone(),
        },
        cluster: r.cluster,
    })
}

/// The outcome of [`reconcile`].
#[derive(Debug, PartialEq, Eq)]
pub struct Reconciled {
    /// The configuration to start from and to store.
    pub cluster: StoredCluster,
    /// Where the command line disagrees with the stored configuration.
    pub warnings: Vec<String>,
}

/// Decides what a node starts from. Without a stored configuration: `--join` (none), else
/// `--peers`, else this node alone at `bound`. With one, the stored configuration, whatever the
/// command line says (each disagreement is a warning). A node started without `--peers`
/// advertises the address it listens on.
pub fn reconcile(stored: Option<&StoredCluster>, config: &ServerConfig, bound: &str) -> Reconciled {
    let me = &config.id;
    let mut warnings = Vec::new();
    let mut cluster = match stored {
        None => {
            let bootstrap = if !config.join.is_empty() {
                Vec::new()
            } else if config.peers.is_empty() {
                vec![Peer {
                    id: me.clone(),
                    addr: bound.to_string(),
                }]
            } else {
                config.peers.clone()
            };
            StoredCluster {
                version: VERSION,
                addrs: bootstrap
                    .iter()
                    .map(|p| (p.id.clone(), p.addr.clone()))
                    .collect(),
                bootstrap,
            }
        }
        Some(s) => {
            if !config.join.is_empty() && !s.bootstrap.is_empty() {
                warnings.push(format!(
                    "--join is ignored: this data dir belongs to the cluster created as {}",
                    describe(&s.bootstrap)
                ));
            } else if !config.peers.is_empty() && !same_peers(&config.peers, &s.bootstrap) {
                warnings.push(format!(
                    "--peers {} differs from the stored configuration {}; the stored one is \
                     used (the cluster's current members are in the log: GET /cluster)",
                    describe(&config.peers),
                    describe(&s.bootstrap)
                ));
            }
            s.clone()
        }
    };
    if config.peers.is_empty() || !cluster.addrs.contains_key(me) {
        cluster.addrs.insert(me.clone(), bound.to_string());
    }
    Reconciled { cluster, warnings }
}

/// Whether two peer lists name the same members at the same addresses, in any order.
fn same_peers(a: &[Peer], b: &[Peer]) -> bool {
    let set = |l: &[Peer]| -> BTreeMap<NodeId, String> {
        l.iter().map(|p| (p.id.clone(), p.addr.clone())).collect()
    };
    a.len() == b.len() && set(a) == set(b)
}

/// `id=addr,...`, or a word for none (a joined node).
fn describe(peers: &[Peer]) -> String {
    if peers.is_empty() {
        return "(joined a running cluster)".into();
    }
    peers
        .iter()
        .map(|p| format!("{}={}", p.id, p.addr))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(s: &str) -> Vec<Peer> {
        s.split(',').map(|p| p.parse().unwrap()).collect()
    }

    fn cfg(peers_arg: &str, join: &[&str]) -> ServerConfig {
        let mut c = ServerConfig::single_node("n1", "127.0.0.1:0", "/unused");
        c.peers = if peers_arg.is_empty() {
            Vec::new()
        } else {
            peers(peers_arg)
        };
        c.join = join.iter().map(|s| s.to_string()).collect();
        c
    }

    const THREE: &str = "n1=h:1,n2=h:2,n3=h:3";

    #[test]
    fn a_first_start_stores_peers_or_itself_or_nothing_when_joining() {
        let r = reconcile(None, &cfg(THREE, &[]), "0.0.0.0:1");
        assert_eq!(r.cluster.bootstrap, peers(THREE));
        assert_eq!(r.cluster.addrs.len(), 3);
        assert_eq!(r.cluster.addrs[&NodeId::from("n1")], "h:1");
        assert!(r.warnings.is_empty());

        let alone = reconcile(None, &cfg("", &[]), "127.0.0.1:5");
        assert_eq!(alone.cluster.bootstrap, peers("n1=127.0.0.1:5"));
        assert_eq!(alone.cluster.voters(), vec![NodeId::from("n1")]);

        let joining = reconcile(None, &cfg("", &["h:1"]), "127.0.0.1:4");
        assert!(joining.cluster.bootstrap.is_empty());
        assert!(joining.cluster.voters().is_empty());
        assert_eq!(joining.cluster.addrs.len(), 1);
    }

    #[test]
    fn the_stored_configuration_wins_over_a_different_command_line_with_a_warning() {
        let stored = reconcile(None, &cfg(THREE, &[]), "x").cluster;
        // The same --peers in another order: no warning, nothing to write.
        let same = reconcile(Some(&stored), &cfg("n3=h:3,n1=h:1,n2=h:2", &[]), "x");
        assert_eq!((&same.cluster, same.warnings.len()), (&stored, 0));
        // A wrong list: the stored one, and a warning naming both.
        let wrong = reconcile(Some(&stored), &cfg("n1=h:1,n9=h:9", &[]), "x");
        assert_eq!(wrong.cluster, stored);
        assert_eq!(wrong.warnings.len(), 1);
        assert!(
            wrong.warnings[0].contains("n9=h:9") && wrong.warnings[0].contains("n2=h:2"),
            "{:?}",
            wrong.warnings
        );
        // --join on a data dir that belongs to a cluster.
        let join = reconcile(Some(&stored), &cfg("", &["h:1"]), "h:1");
        assert_eq!(join.cluster.voters(), stored.voters());
        assert!(join.warnings[0].contains("--join is ignored"));
    }

    #[test]
    fn a_joined_node_restarts_as_joined_and_advertises_where_it_listens() {
        let mut stored = reconcile(None, &cfg("", &["h:1"]), "h:4").cluster;
        stored.addrs.insert(NodeId::from("n2"), "h:2".into());
        let r = reconcile(Some(&stored), &cfg("", &[]), "h:44");
        assert!(r.cluster.bootstrap.is_empty() && r.warnings.is_empty());
        assert_eq!(r.cluster.addrs[&NodeId::from("n1")], "h:44");
        assert_eq!(r.cluster.addrs[&NodeId::from("n2")], "h:2");
    }

    #[test]
    fn the_file_round_trips_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let c = reconcile(None, &cfg(THREE, &[]), "x").cluster;
        save(dir.path(), &c).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(c.clone()));
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(load(dir.path()), Err(StorageError::Corrupt(_))));
        // A version this build does not know is refused too.
        let future = StoredCluster { version: 9, ..c };
        save(dir.path(), &future).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
    }
}

//! kvctl's `member` commands: the cluster's configuration (`GET /cluster`) and changes to it
//! (`POST /cluster/*`), sent through [`Client`] like every request, so a follower's 307 is
//! followed to the leader and a request sent during an election waits for one (`--retry-ms`).
//!
//! Readable output: what changed, then the configuration as a table (`--json`: the server's
//! body). A refusal exits 1 with `kvctl: err_code: err_msg`, e.g.
//! `kvctl: not_caught_up: n4 is not caught up: match index 80, leader's last index 400`.
//! A change whose answer was lost (`unknown_outcome`) and was retried may come back as
//! `already_member` or `unknown_node`: the first attempt took effect; `member list` shows it.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientError, Reply};
use crate::ctl::table;
use crate::membership_api::ClusterView;

/// kvctl's `member` subcommands.
#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    /// List the members: role, address and, from the leader, match index and lag.
    List,
    /// Add node ID, listening at ADDR (host:port), as a learner: it receives the log without
    /// voting. Start it first with `kvserver --id ID --addr ADDR --join <members>`.
    AddLearner {
        /// The new member's id.
        id: String,
        /// Its address (client API and Raft RPCs), host:port.
        addr: String,
    },
    /// Make learner ID a voter; refused (not_caught_up) until it is within the leader's
    /// --promote-lag entries.
    Promote {
        /// The learner.
        id: String,
    },
    /// Remove member ID: a voter (the leader too: it hands over first) or a learner.
    Remove {
        /// The member.
        id: String,
    },
    /// Replace voter OLD by a new voter NEW at ADDR, in one joint change (start NEW first
    /// with `kvserver --join`).
    Replace {
        /// The voter to remove.
        old: String,
        /// The new voter's id.
        new: String,
        /// Its address, host:port.
        addr: String,
    },
}

/// Carries out `cmd` and returns what to print.
pub async fn run(client: &mut Client, cmd: MemberCmd, json: bool) -> Result<String, ClientError> {
    let (reply, done) = match cmd {
        MemberCmd::List => (client.call(Method::GET, "/cluster", None).await?, None),
        MemberCmd::AddLearner { id, addr } => {
            let body = json!({ "id": id, "addr": addr });
            let r = post(client, "/cluster/learners", &body).await?;
            (r, Some(format!("added learner {id} at {addr}")))
        }
        MemberCmd::Promote { id } => {
            let r = post(client, "/cluster/promote", &json!({ "id": id })).await?;
            (r, Some(format!("promoted {id} to voter")))
        }
        MemberCmd::Remove { id } => {
            let r = post(client, "/cluster/remove", &json!({ "id": id })).await?;
            (r, Some(format!("removed {id}")))
        }
        MemberCmd::Replace { old, new, addr } => {
            let body = json!({ "remove": old, "add": { "id": new, "addr": addr } });
            let r = post(client, "/cluster/replace", &body).await?;
            (r, Some(format!("replaced {old} by {new} at {addr}")))
        }
    };
    if json {
        return Ok(format!("{}\n", reply.raw));
    }
    let view: ClusterView = serde_json::from_value(reply.body)
        .map_err(|e| ClientError::BadReply(format!("not a cluster view ({e}): {}", reply.raw)))?;
    let mut out = String::new();
    if let Some(done) = done {
        match view.index {
            Some(i) => out.push_str(&format!("{done} (configuration entry {i})\n")),
            None => out.push_str(&format!("{done}\n")),
        }
    }
    out.push_str(&render(&view));
    Ok(out)
}

async fn post(client: &mut Client, path: &str, body: &Value) -> Result<Reply, ClientError> {
    client.call(Method::POST, path, Some(body)).await
}

/// The configuration as a few lines and a table of members.
pub fn render(v: &ClusterView) -> String {
    let list = |ids: &[raftkv_core::NodeId]| {
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.iter()
                .map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut out = match (&v.leader_id, &v.leader_addr) {
        (Some(l), Some(a)) => format!("leader {l} at {a}, term {}\n", v.term),
        (Some(l), None) => format!("leader {l}, term {}\n", v.term),
        (None, _) => format!("no leader known to {} (term {})\n", v.id, v.term),
    };
    out.push_str(&format!(
        "voters {}; learners {}\n",
        list(&v.voters),
        list(&v.learners)
    ));
    if v.joint {
        out.push_str(&format!(
            "joint configuration: the outgoing voters {} decide too until the leader leaves it\n",
            list(&v.outgoing)
        ));
    }
    if let Some(i) = v.pending_change {
        out.push_str(&format!("a change is pending at entry {i}\n"));
    }
    if !v.from_leader {
        out.push_str(&format!(
            "answered by {} ({:?}), not the leader: no match index or lag\n",
            v.id, v.role
        ));
    }
    let dash = |x: Option<String>| x.unwrap_or_else(|| "-".into());
    let mut rows = vec![
        ["ID", "ADDR", "ROLE", "MATCH", "LAG", "STATE"]
            .map(str::to_string)
            .to_vec(),
    ];
    for m in &v.members {
        rows.push(vec![
            m.id.to_string(),
            dash(m.addr.clone()),
            m.role.clone(),
            dash(m.match_index.map(|i| i.to_string())),
            dash(m.lag.map(|i| i.to_string())),
            dash(m.state.clone()),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::ctl::{Args, Cmd};

    #[test]
    fn member_commands_parse() {
        let a = Args::try_parse_from(["kvctl", "member", "replace", "n3", "n4", "h:4", "--json"])
            .unwrap();
        assert!(a.json);
        assert!(matches!(
            a.command,
            Cmd::Member { cmd: MemberCmd::Replace { ref old, ref new, ref addr } }
                if old == "n3" && new == "n4" && addr == "h:4"
        ));
        assert!(Args::try_parse_from(["kvctl", "member", "add-learner", "n4"]).is_err());
        assert!(Args::try_parse_from(["kvctl", "member", "list"]).is_ok());
    }

    #[test]
    fn a_view_renders_as_a_table_with_dashes_for_what_a_follower_does_not_know() {
        let body = json!({
            "ok": true, "id": "n2", "role": "follower", "term": 3,
            "leader_id": "n1", "leader_addr": "h:1",
            "voters": ["n1", "n2"], "outgoing": [], "learners": ["n4"], "joint": false,
            "pending_change": null, "last_index": 9, "commit_index": 9, "from_leader": false,
            "members": [
                {"id": "n1", "addr": "h:1", "role": "voter", "match_index": null, "lag": null, "state": null},
                {"id": "n4", "addr": null, "role": "learner", "match_index": null, "lag": null, "state": null},
            ],
        });
        let v: ClusterView = serde_json::from_value(body).unwrap();
        let out = render(&v);
        assert!(
            out.starts_with("leader n1 at h:1, term 3\nvoters n1, n2; learners n4\n"),
            "{out}"
        );
        assert!(out.contains("not the leader"), "{out}");
        assert!(out.contains("n4  -     learner  -      -    -"), "{out}");
    }
}

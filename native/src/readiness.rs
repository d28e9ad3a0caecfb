//! `GET /readyz`: whether this node should take traffic now (`/healthz` stays liveness: the
//! process serves). Ready means all of:
//! - the Raft node runs (no storage failure);
//! - it knows a leader of its term;
//! - it heard from that leader within `max_silence` (about an election timeout) or, leading,
//!   a quorum of voters answered it within that time (a lone voter is its own quorum);
//! - it applied everything it knows to be committed: `last_applied >= commit_index`. A
//!   follower learns the commit index from the leader's messages (core clamps it to the
//!   entries it holds), so this is "applied everything committed up to when it last heard
//!   from the leader", as far as the follower's log reaches.
//!
//! Otherwise 503 `{"ok":false,"err_code":"not_ready","err_msg":<the reason>}`. The inputs are
//! the view the driver publishes after every turn and the contact time it stores beside it
//! ([`RaftNode::leader_contact_age`]); core provides both (`Node::last_leader_contact`,
//! `Node::quorum_contact`) on the driver's clock.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use raftkv_core::raft::{Index, Role};

use crate::api::{write_error, write_json};
use crate::driver::RaftNode;

/// What readiness is decided from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// The node stopped (storage failure or shutdown).
    pub stopped: bool,
    /// Its role.
    pub role: Role,
    /// It knows a leader of its term.
    pub leader_known: bool,
    /// How long since it last heard from the leader (leading: since a quorum answered);
    /// `None` when it knows no leader.
    pub contact_age: Option<Duration>,
    /// The last index it applied.
    pub applied: Index,
    /// The commit index it knows.
    pub commit: Index,
}

/// `Ok` when ready; otherwise why not, for an operator.
pub fn check(i: &Inputs, max_silence: Duration) -> Result<(), String> {
    if i.stopped {
        return Err("the raft node has stopped (see the server log)".into());
    }
    if !i.leader_known {
        return Err("no leader known".into());
    }
    let age = i.contact_age.unwrap_or(Duration::MAX);
    if age > max_silence {
        let ms = age.as_millis();
        return Err(match (i.role, i.contact_age) {
            (Role::Leader, Some(_)) => format!("no quorum of voters heard from for {ms} ms"),
            (_, Some(_)) => format!("leader not heard from for {ms} ms"),
            (_, None) => "leader not heard from since it was learnt".into(),
        });
    }
    if i.applied < i.commit {
        return Err(format!("applying: applied {} of {}", i.applied, i.commit));
    }
    Ok(())
}

/// The readiness inputs of `node` now.
pub fn inputs(node: &RaftNode) -> Inputs {
    let v = node.view();
    Inputs {
        stopped: v.stopped,
        role: v.status.role,
        leader_known: v.status.leader_id.is_some(),
        contact_age: node.leader_contact_age(),
        applied: v.status.last_applied,
        commit: v.status.commit_index,
    }
}

/// `GET /readyz` for `node`, which must hear from its leader (or a quorum) within
/// `max_silence`.
pub fn router(node: RaftNode, max_silence: Duration) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .with_state((node, max_silence))
}

/// 200 while a leader is known, was heard from recently and every known commit is applied;
/// 503 `not_ready` saying which condition fails.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "node",
    responses(
        (status = 200, description = "Ready", body = crate::api::OkBody),
        (status = 503, description = "`not_ready`: `err_msg` names the condition that fails", body = crate::api::ErrorBody)
    )
)]
async fn readyz(State((node, max_silence)): State<(RaftNode, Duration)>) -> Response {
    match check(&inputs(&node), max_silence) {
        Ok(()) => write_json(StatusCode::OK, &crate::api::OkBody { ok: true }),
        Err(reason) => write_error(StatusCode::SERVICE_UNAVAILABLE, "not_ready", &reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SILENCE: Duration = Duration::from_millis(300);

    fn ready_follower() -> Inputs {
        Inputs {
            stopped: false,
            role: Role::Follower,
            leader_known: true,
            contact_age: Some(Duration::from_millis(40)),
            applied: 10,
            commit: 10,
        }
    }

    #[test]
    fn a_caught_up_follower_that_heard_its_leader_recently_is_ready() {
        assert_eq!(check(&ready_follower(), SILENCE), Ok(()));
        // Applied past what it knows committed cannot happen, but is not "behind" either.
        let i = Inputs {
            applied: 11,
            ..ready_follower()
        };
        assert_eq!(check(&i, SILENCE), Ok(()));
    }

    #[test]
    fn each_missing_condition_is_named() {
        let no_leader = Inputs {
            leader_known: false,
            contact_age: None,
            ..ready_follower()
        };
        assert_eq!(check(&no_leader, SILENCE), Err("no leader known".into()));
        let silent = Inputs {
            contact_age: Some(Duration::from_millis(1234)),
            ..ready_follower()
        };
        assert_eq!(
            check(&silent, SILENCE),
            Err("leader not heard from for 1234 ms".into())
        );
        let behind = Inputs {
            applied: 7,
            ..ready_follower()
        };
        assert_eq!(
            check(&behind, SILENCE),
            Err("applying: applied 7 of 10".into())
        );
        let stopped = Inputs {
            stopped: true,
            ..ready_follower()
        };
        assert!(check(&stopped, SILENCE).is_err_and(|e| e.contains("stopped")));
    }

    #[test]
    fn a_leader_is_ready_while_a_quorum_answers_it() {
        let leader = Inputs {
            role: Role::Leader,
            ..ready_follower()
        };
        assert_eq!(check(&leader, SILENCE), Ok(()));
        let cut_off = Inputs {
            contact_age: Some(Duration::from_millis(900)),
            ..leader
        };
        assert_eq!(
            check(&cut_off, SILENCE),
            Err("no quorum of voters heard from for 900 ms".into())
        );
    }

    #[test]
    fn the_silence_bound_is_inclusive() {
        let at = Inputs {
            contact_age: Some(SILENCE),
            ..ready_follower()
        };
        assert_eq!(check(&at, SILENCE), Ok(()));
    }
}

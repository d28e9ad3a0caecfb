// The JS-facing contract of the `Playground` wasm class (web/src/lib.rs holds the same text as
// its module doc). Types only: this module exports nothing at run time.
//
// Numbers: every time, index, term and id is a plain JS number (the simulator's u64 values stay
// far below 2^53); the seed is a decimal string, because a u64 seed may not fit a double.
// Node ids are strings "n1".."nN". Times are simulated milliseconds since the run began.

/**
 * Options of `new Playground(opts)`. Every field is optional.
 * @typedef {object} PlaygroundOptions
 * @property {number} [nodes=5]               cluster size, 3..=9
 * @property {number|string} [seed=1]         u64 seed: a number below 2^53, or any text (a
 *                                            decimal u64 is itself; other text is hashed with
 *                                            64-bit FNV-1a, blanks trimmed)
 * @property {number} [loss=0]                probability 0..1 that a message is dropped
 * @property {number} [latency_min=10]        one-way latency, ms (uniform in [min, max])
 * @property {number} [latency_max=30]
 * @property {number} [election_timeout_min=150]
 * @property {number} [election_timeout_max=300]
 * @property {number} [heartbeat=50]          leader heartbeat interval, ms
 * @property {number} [snapshot_threshold=0] snapshot every N applied entries (0: never)
 * @property {number} [trace_len=200]         how many trace lines state() keeps
 * @property {number} [log_len=60]            how many log entries per node state() carries
 * @property {number} [message_lines=0]       how many delivery and drop lines state() keeps
 */

/**
 * The class. Every method may throw an `Error` with a readable message for bad input (unknown
 * node id, loss outside 0..1, ...). A Rust panic surfaces as a `WebAssembly.RuntimeError`;
 * `take_panic_message()` (a free function of the package) then returns the panic's text.
 *
 * @typedef {object} PlaygroundApi
 * @property {() => number} now                       simulated time, ms
 * @property {() => number} events                    events processed since the start
 * @property {(ms: number) => number} advance         runs every event due within `ms`, then sets
 *                                                    the clock to now+ms; returns events run
 * @property {() => boolean} step                     runs the next event (moving the clock to its
 *                                                    time); false when nothing is scheduled
 * @property {(t: number, events: number) => void} run_to
 *   replay helper: runs events until `events` have been run in total or none is due at or before
 *   `t`, then sets the clock to `t` (never backwards). Replays an action recorded at (t, events).
 * @property {() => string[]} node_ids
 * @property {(id: string) => void} kill              crash: volatile state lost, storage kept
 * @property {(id: string) => void} restart
 * @property {(from: string, to: string) => void} cut      one direction: from -> to
 * @property {(from: string, to: string) => void} heal
 * @property {(a: string, b: string) => void} cut_both
 * @property {(a: string, b: string) => void} heal_both
 * @property {(id: string) => void} isolate           cut every link to and from `id`
 * @property {() => void} heal_all
 * @property {(id: number) => void} drop_message  the network loses message `id`, now in flight
 * @property {(id: number) => number} duplicate_message  the network delivers message `id`, now in
 *                                                    flight, twice (a copy 5 ms later); the copy's id
 * @property {(id: number, ms: number) => number} delay_message  message `id` arrives `ms`
 *                                                    (1..=60000) later; returns when
 * @property {(kind: string, from: string, to: string) => void} filter  drops every node-to-node
 *                                                    message of `kind` from `from` to `to` ("": any)
 * @property {(kind: string, from: string, to: string) => void} unfilter  clears that filter
 * @property {(p: number) => void} set_loss
 * @property {(p: number) => void} set_duplicate     every node link's duplication probability
 * @property {(from: string, to: string, loss: number, min: number, max: number) => void} set_link
 *                                                    one directed link's loss and latency (ms)
 * @property {(min: number, max: number) => void} set_latency
 * @property {(id: string, ppm: number) => void} set_clock_drift  the node's clock runs ppm
 *                                                    (whole, within ±500000) off simulated time
 * @property {(id: string, ms: number) => void} jump_clock  its clock jumps ms (1..=60000) forward
 * @property {() => string} add_node                  a fresh node with empty stores and no
 *                                                    configuration (at most 9 nodes); its id
 * @property {(id: string) => number} add_learner     asks the leader; returns the index of the
 *                                                    configuration entry (effective once committed)
 * @property {(id: string) => number} promote         learner -> voter (refused until caught up)
 * @property {(id: string) => number} remove          a voter (the leader too) or a learner
 * @property {(old: string, fresh: string) => number} replace  voter old by a non-member, one
 *                                                    joint change
 * @property {(to: string) => string} transfer_leader asks the leader to hand over to voter `to`;
 *                                                    returns the leader asked
 *   Membership calls throw a readable Error when refused: "cannot promote n4: n4 is not caught
 *   up: ...", "cannot remove n2: a configuration change is in progress (entry 9)", ...
 * @property {(key: string, value: string, node?: string) => number} put   returns the op id;
 *   every client op goes first to `node` ("" or absent: the leader)
 * @property {(key: string, mode: "stale"|"readindex"|"lease", node?: string) => number} get
 * @property {(key: string, node?: string) => number} delete
 * @property {(key: string, expected: string, value: string, node?: string) => number} cas
 * @property {() => PlaygroundState} state
 */

/**
 * @typedef {object} PlaygroundState
 * @property {number} now
 * @property {number} events                  events processed so far
 * @property {string} seed
 * @property {NodeState[]} nodes              in id order
 * @property {MessageState[]} messages        in flight (sent_at <= now < deliver_at)
 * @property {DropState[]} drops              dropped in the last 150 ms (DROP_SHOW_MS), oldest first
 * @property {LinkState[]} links              every ordered pair (from != to)
 * @property {OpState[]} ops                  every client op, oldest first
 * @property {TraceLine[]} trace              the last `trace_len` events, oldest first
 * @property {TraceLine[]} message_trace      the last `message_lines` deliveries and drops,
 *                                            oldest first, numbered in the trace's sequence
 * @property {string|null} last_event         the last event run, one line (a delivery, a
 *                                            timer...): what a single step did
 * @property {HistoryVerdict} history
 * @property {string[]} violations            invariant violations seen (empty when all is well)
 * @property {{loss: number, duplicate: number, latency_min: number, latency_max: number,
 *   filters: {kind: string, from: string|null, to: string|null}[]}} net  filters: set by hand, in order
 * @property {MembershipState} membership     the configuration the page shows
 * @property {number} max_nodes               add_node refuses past this many nodes (9)
 */

/**
 * The leader's configuration (without a leader, that of the running node that applied the most).
 * @typedef {object} MembershipState
 * @property {string[]} voters     who votes (the incoming half while joint)
 * @property {string[]} outgoing   the outgoing voters of a joint configuration; empty otherwise
 * @property {string[]} learners
 * @property {boolean} joint
 * @property {string|null} from    the node whose view this is
 */

/**
 * @typedef {object} NodeState
 * @property {string} id
 * @property {boolean} alive
 * @property {"follower"|"pre_candidate"|"candidate"|"leader"} role  (last role while dead)
 * @property {number} term
 * @property {string|null} voted_for
 * @property {string|null} leader_id
 * @property {number} commit_index
 * @property {number} last_applied
 * @property {number} last_log_index
 * @property {number} snapshot_index
 * @property {number} timer_start             election timer (leader: check-quorum period)
 * @property {number} timer_deadline
 * @property {LogEntryState[]} log            the last `log_len` entries, index ascending
 * @property {Object<string,string>} kv      the node's applied state machine
 * @property {"voter"|"incoming"|"outgoing"|"learner"|"joining"|"removed"} member  its place in
 *   `membership`: incoming/outgoing are voters of one half of a joint configuration only
 * @property {string} config                  its own view of the configuration, one line
 * @property {string|null} transfer_to        a leader handing over: to whom
 * @property {number|null} lease_until        a leader with a read lease: until when (its clock)
 * @property {number} clock                   its own clock now: timer_* and lease_until are on it
 * @property {number} drift_ppm               how fast that clock runs off simulated time (+: fast)
 * @property {{id: string, voter: boolean, next_index: number, match_index: number, state: string}[]} progress
 *   while it leads: what it knows of each member, itself included (empty otherwise)
 * @property {{from: string, granted: boolean}[]} votes  vote replies received since it last
 *   became (pre-)candidate (empty unless it is one)
 */

/** @typedef {{index: number, term: number, summary: string}} LogEntryState */

/**
 * @typedef {object} MessageState
 * @property {number} id
 * @property {string} from
 * @property {string} to
 * @property {string} kind   request_vote | request_vote_response | pre_vote | pre_vote_response |
 *                           append_entries | append_entries_response | install_snapshot |
 *                           install_snapshot_response | timeout_now
 * @property {number} sent_at
 * @property {number} deliver_at
 * @property {boolean} dropped  the network will drop it (loss, or a link cut while in flight)
 * @property {string} summary   one line, e.g. "t3 prev=4/3 entries=5..6 commit=4"
 * @property {[string, string][]} fields  every field, [name, value], in a fixed order per kind
 *   (term, candidate, last_log, pre_vote, granted, prev_log_index, prev_log_term, entries,
 *   leader_commit, success, match_index, conflict, ...)
 * @property {boolean|null} granted  a vote reply: granted; an append reply: success; else null
 * @property {[number, number]|null} entries  an AppendEntries with entries: first and last index
 */

/**
 * A dropped message. Most never flew (lost, or sent over a cut link), so `messages` never shows
 * them: this is how the page can.
 * @typedef {object} DropState
 * @property {string} from
 * @property {string} to
 * @property {string} kind
 * @property {number} at          when it was dropped
 * @property {string} reason      lost | partitioned | node_down | killed | unknown_node | filtered | by_hand
 * @property {boolean} at_send    dropped as it was sent, rather than on the way or on arrival
 */
/**
 * @typedef {object} LinkState
 * @property {string} from
 * @property {string} to
 * @property {boolean} cut
 * @property {number} delivered   messages delivered over this direction so far
 * @property {number} dropped     messages dropped on it so far
 * @property {number} loss        its loss probability (set_loss sets every link's; set_link one's)
 * @property {number} latency_min its one-way latency range, ms
 * @property {number} latency_max
 */

/**
 * @typedef {object} OpState
 * @property {number} id
 * @property {string} op          put | get | delete | cas
 * @property {string} key
 * @property {string} [value]
 * @property {string} [expected]
 * @property {string} [mode]      get: stale | readindex | lease
 * @property {string} [target]    the node the console sent it to first (absent: the leader)
 * @property {string|null} node   the node serving it (a get's server once answered; otherwise
 *                                the one the client sent to last)
 * @property {number} [index]     answered write: its log index; answered get: the server's
 *                                applied index
 * @property {"pending"|"ok"|"failed"} status
 * @property {string} [result]    the reply, one line (e.g. `value="v1"`, `not_found`, `cas_failed`)
 * @property {number} invoked_at
 * @property {number|null} completed_at
 */

/** @typedef {{seq: number, at: number, node: string|null, text: string, kind: "state"|"client"|"message"}} TraceLine
 * seq: the line's number in the run (0 first; no gaps unless message lines are kept, which
 * take numbers of the same sequence); kind: what the Events filter sorts it under */

/**
 * @typedef {object} HistoryVerdict
 * @property {boolean|null} linearizable  null until checked (or when the checker gave up)
 * @property {number} ops                 completed ops in the checked history
 * @property {number} stale_unchecked     answered stale reads, left out of the check
 * @property {number} stale_invented      stale reads that returned a value no write produced
 * @property {string} detail
 */

export {};

//! raftkv-web: the browser playground's bindings over `raftkv_core`'s deterministic simulator.
//!
//! JavaScript sees one class, `Playground` (see `www/types.js` for the contract, mirrored by
//! [`contract`]), and two free functions, [`core_version`] and [`take_panic_message`].
//!
//! - `new Playground(opts)`: a cluster of `opts.nodes` (3..=9) nodes from `opts.seed`;
//! - driving: `now()`, `events()`, `step()`, `advance(ms)`, `run_to(t, events)`;
//! - faults: `kill`, `restart`, `cut`, `heal`, `cut_both`, `heal_both`, `isolate`, `heal_all`,
//!   `partition("n1,n2 | n3,n4,n5")`, `set_loss`, `set_latency`, `set_duplicate`,
//!   `set_link(from, to, loss, min, max)` (one directed link); one message in flight:
//!   `drop_message(id)`, `duplicate_message(id)`, `delay_message(id, ms)`; message filters:
//!   `filter(kind, from, to)`, `unfilter(kind, from, to)` ("" for any node);
//! - clocks: `set_clock_drift(id, ppm)`, `jump_clock(id, ms)`;
//! - membership (asked of the leader; see [`membership`]): `add_node()` (a fresh joining node,
//!   its id), `add_learner(id)`, `promote(id)`, `remove(id)`, `replace(old, new)` (each the
//!   index of its configuration entry), `transfer_leader(to)` (the leader asked);
//! - client operations, each returning its op id and sent first to an optional node (the
//!   leader without one): `put`, `get` (stale, readindex or lease), `delete`, `cas`;
//! - `state()`: a plain object (maps as objects, numbers below 2^53) the page draws, parsed
//!   from JSON.
//!
//! Bad input (an unknown node id, a loss outside 0..1, ...) throws an `Error` with a readable
//! message. A Rust panic traps as a `WebAssembly.RuntimeError`; [`take_panic_message`] then gives
//! its text so the page can show it.

pub mod contract;
pub mod membership;
pub mod session;
pub mod view;

use std::sync::Mutex;

use raftkv_core::sim::ClientOp;
use wasm_bindgen::prelude::*;

use contract::{Options, State};
use session::Session;

#[wasm_bindgen]
extern "C" {
    /// The browser's `JSON.parse`.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &str) -> Result<JsValue, JsValue>;
}

/// The version of the core the page runs, so the page can show what it was built from.
#[wasm_bindgen]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

/// The message of the last Rust panic, once (then `null` until the next one).
#[wasm_bindgen]
pub fn take_panic_message() -> Option<String> {
    PANIC_MESSAGE.lock().ok()?.take()
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

/// Installs (once) a panic hook that keeps the panic's message for [`take_panic_message`] and
/// logs it to the console.
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let msg = info.to_string();
                console_error(&format!("raftkv simulator panicked: {msg}"));
                if let Ok(mut slot) = PANIC_MESSAGE.lock() {
                    *slot = Some(msg);
                }
            }));
        });
    }
}

fn js_err(msg: String) -> JsError {
    JsError::new(&msg)
}

/// A simulated cluster the page drives (see the crate docs).
#[wasm_bindgen]
pub struct Playground {
    session: Session,
}

#[wasm_bindgen]
impl Playground {
    /// `new Playground(opts)`: every option optional (see `www/types.js`).
    #[wasm_bindgen(constructor)]
    pub fn new(opts: JsValue) -> Result<Playground, JsError> {
        install_panic_hook();
        let opts: Options = if opts.is_undefined() || opts.is_null() {
            Options::default()
        } else {
            serde_wasm_bindgen::from_value(opts)
                .map_err(|e| js_err(format!("bad Playground options: {e}")))?
        };
        Ok(Playground {
            session: Session::new(opts).map_err(js_err)?,
        })
    }

    /// Simulated time, ms.
    pub fn now(&self) -> f64 {
        self.session.now() as f64
    }

    /// Events processed since the start.
    pub fn events(&self) -> f64 {
        self.session.events() as f64
    }

    /// The node ids, `n1`..`nN`.
    pub fn node_ids(&self) -> Vec<String> {
        self.session.node_ids()
    }

    /// Runs the next event; false when nothing is scheduled.
    pub fn step(&mut self) -> bool {
        self.session.step()
    }

    /// Runs every event due within `ms`, then sets the clock to now + `ms`; returns events run.
    pub fn advance(&mut self, ms: f64) -> Result<f64, JsError> {
        self.session.advance(ms).map(|n| n as f64).map_err(js_err)
    }

    /// Replay helper: runs events until `events` ran in total or none is due by `t`, then moves
    /// the clock to `t`.
    pub fn run_to(&mut self, t: f64, events: f64) -> Result<(), JsError> {
        self.session.run_to(t, events).map_err(js_err)
    }

    /// Rewind helper: runs events until `events` ran in total, the clock left at the last
    /// one's time (where single steps would have left it).
    pub fn run_events(&mut self, events: f64) -> Result<(), JsError> {
        self.session.run_events(events).map_err(js_err)
    }

    /// Crashes a node: volatile state lost, storage kept.
    pub fn kill(&mut self, id: &str) -> Result<(), JsError> {
        self.session.kill(id).map_err(js_err)
    }

    /// Restarts a crashed node from its storage.
    pub fn restart(&mut self, id: &str) -> Result<(), JsError> {
        self.session.restart(id).map_err(js_err)
    }

    /// Cuts the directed link `from -> to`.
    pub fn cut(&mut self, from: &str, to: &str) -> Result<(), JsError> {
        self.session.cut(from, to).map_err(js_err)
    }

    /// Restores the directed link `from -> to`.
    pub fn heal(&mut self, from: &str, to: &str) -> Result<(), JsError> {
        self.session.heal(from, to).map_err(js_err)
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_both(&mut self, a: &str, b: &str) -> Result<(), JsError> {
        self.session.cut_both(a, b).map_err(js_err)
    }

    /// Restores both directions between `a` and `b`.
    pub fn heal_both(&mut self, a: &str, b: &str) -> Result<(), JsError> {
        self.session.heal_both(a, b).map_err(js_err)
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&mut self, id: &str) -> Result<(), JsError> {
        self.session.isolate(id).map_err(js_err)
    }

    /// Restores every link.
    pub fn heal_all(&mut self) -> Result<(), JsError> {
        self.session.heal_all().map_err(js_err)
    }

    /// Cuts the links between groups of nodes, `"n1,n2 | n3,n4,n5"` (nodes in no group form
    /// one more group).
    pub fn partition(&mut self, groups: &str) -> Result<(), JsError> {
        self.session.partition(groups).map_err(js_err)
    }

    /// The network loses node-to-node message `id`, now in flight.
    pub fn drop_message(&mut self, id: f64) -> Result<(), JsError> {
        self.session.drop_message(id).map_err(js_err)
    }

    /// The network delivers node-to-node message `id`, now in flight, twice (a copy a few ms
    /// after it); returns the copy's id.
    pub fn duplicate_message(&mut self, id: f64) -> Result<f64, JsError> {
        self.session
            .duplicate_message(id)
            .map(|c| c as f64)
            .map_err(js_err)
    }

    /// Node-to-node message `id`, now in flight, arrives `ms` (1..=60000) later; returns when.
    pub fn delay_message(&mut self, id: f64, ms: f64) -> Result<f64, JsError> {
        self.session
            .delay_message(id, ms)
            .map(|t| t as f64)
            .map_err(js_err)
    }

    /// Drops every node-to-node message of `kind` from node `from` to node `to` ("" for any
    /// node) until `unfilter` with the same arguments.
    pub fn filter(&mut self, kind: &str, from: &str, to: &str) -> Result<(), JsError> {
        self.session.filter(kind, from, to).map_err(js_err)
    }

    /// Stops a filter set by `filter`.
    pub fn unfilter(&mut self, kind: &str, from: &str, to: &str) -> Result<(), JsError> {
        self.session.unfilter(kind, from, to).map_err(js_err)
    }

    /// Sets the duplication probability (0..=1) of every node link.
    pub fn set_duplicate(&mut self, p: f64) -> Result<(), JsError> {
        self.session.set_duplicate(p).map_err(js_err)
    }

    /// Sets the directed link `from -> to`'s loss (0..=1) and latency range (ms).
    pub fn set_link(
        &mut self,
        from: &str,
        to: &str,
        loss: f64,
        min: f64,
        max: f64,
    ) -> Result<(), JsError> {
        self.session
            .set_link(from, to, loss, min, max)
            .map_err(js_err)
    }

    /// Sets the loss probability (0..=1) of every node link.
    pub fn set_loss(&mut self, p: f64) -> Result<(), JsError> {
        self.session.set_loss(p).map_err(js_err)
    }

    /// Sets the latency range (ms) of every node link.
    pub fn set_latency(&mut self, min: f64, max: f64) -> Result<(), JsError> {
        self.session.set_latency(min, max).map_err(js_err)
    }

    /// Node `id`'s clock runs `ppm` parts per million off simulated time from now on (+: fast;
    /// a whole number within ±500000).
    pub fn set_clock_drift(&mut self, id: &str, ppm: f64) -> Result<(), JsError> {
        self.session.set_clock_drift(id, ppm).map_err(js_err)
    }

    /// Node `id`'s clock jumps `ms` (1..=60000) forward now.
    pub fn jump_clock(&mut self, id: &str, ms: f64) -> Result<(), JsError> {
        self.session.jump_clock(id, ms).map_err(js_err)
    }

    /// Starts a fresh node with empty stores and no configuration (at most 9 nodes in all);
    /// returns its id.
    pub fn add_node(&mut self) -> Result<String, JsError> {
        self.session.add_node().map_err(js_err)
    }

    /// Asks the leader to add node `id` as a learner; returns its configuration entry's index.
    pub fn add_learner(&mut self, id: &str) -> Result<f64, JsError> {
        self.session
            .add_learner(id)
            .map(|i| i as f64)
            .map_err(js_err)
    }

    /// Asks the leader to make learner `id` a voter; returns its configuration entry's index.
    pub fn promote(&mut self, id: &str) -> Result<f64, JsError> {
        self.session.promote(id).map(|i| i as f64).map_err(js_err)
    }

    /// Asks the leader to remove member `id` (the leader too); returns its configuration
    /// entry's index.
    pub fn remove(&mut self, id: &str) -> Result<f64, JsError> {
        self.session.remove(id).map(|i| i as f64).map_err(js_err)
    }

    /// Asks the leader to replace voter `old` by node `new` in one joint change; returns its
    /// configuration entry's index.
    pub fn replace(&mut self, old: &str, new: &str) -> Result<f64, JsError> {
        self.session
            .replace(old, new)
            .map(|i| i as f64)
            .map_err(js_err)
    }

    /// Asks the leader to hand its leadership to voter `to`; returns the leader asked.
    pub fn transfer_leader(&mut self, to: &str) -> Result<String, JsError> {
        self.session.transfer_leader(to).map_err(js_err)
    }

    /// Writes `key = value`, sent first to `node` (the leader when absent or `""`); returns
    /// the op id.
    pub fn put(
        &mut self,
        key: String,
        value: String,
        node: Option<String>,
    ) -> Result<u32, JsError> {
        self.submit(ClientOp::Put { key, value }, node)
    }

    /// Reads `key` with `mode` `"stale"`, `"readindex"` or `"lease"`, sent first to `node`;
    /// returns the op id.
    pub fn get(&mut self, key: String, mode: &str, node: Option<String>) -> Result<u32, JsError> {
        let policy = Session::read_policy(mode).map_err(js_err)?;
        self.submit(ClientOp::Get { key, policy }, node)
    }

    /// Removes `key`, sent first to `node`; returns the op id.
    pub fn delete(&mut self, key: String, node: Option<String>) -> Result<u32, JsError> {
        self.submit(ClientOp::Delete { key }, node)
    }

    /// Sets `key` to `value` if it holds `expected` ("" matches a missing key), sent first to
    /// `node`; returns the op id.
    pub fn cas(
        &mut self,
        key: String,
        expected: String,
        value: String,
        node: Option<String>,
    ) -> Result<u32, JsError> {
        let op = ClientOp::Cas {
            key,
            expected,
            new: value,
        };
        self.submit(op, node)
    }

    /// The state the page draws (see `PlaygroundState` in `www/types.js`), which the page asks
    /// for on every frame while a run plays. It crosses as one JSON string parsed by the
    /// browser: building the object field by field from wasm (serde-wasm-bindgen) took about
    /// twice as long with 9 nodes (2.0 ms a frame against 1.1). Every number in it is a count, an index or a time in
    /// ms, far below 2^53, so JSON's doubles hold them exactly.
    pub fn state(&mut self) -> Result<JsValue, JsError> {
        let st = self.snapshot();
        let text = serde_json::to_string(&st).map_err(|e| js_err(format!("state: {e}")))?;
        json_parse(&text).map_err(|_| js_err("state: the browser refused its JSON".to_string()))
    }
}

impl Playground {
    fn submit(&mut self, op: ClientOp, node: Option<String>) -> Result<u32, JsError> {
        self.session
            .submit(op, node.as_deref())
            .map(|id| id as u32)
            .map_err(js_err)
    }

    /// The state as a Rust value (what `state()` serializes), for Rust-side tests.
    pub fn snapshot(&mut self) -> State {
        view::state(&mut self.session)
    }
}

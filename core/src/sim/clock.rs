//! Per-node clocks: each simulated node sees its own time, which runs at its own rate against
//! the simulator's global clock and may jump forward.
//!
//! A node's time is what the simulator passes to it (`step`, `tick`, `propose`, `read_index`,
//! `read_lease`, the start of a node); the deadlines it asks for (`next_deadline`) are in its
//! own time and are turned back into global time to schedule its timer. Real clocks drift
//! (crystals are off by tens of ppm, VMs much more) and jump (NTP steps, a VM resumed): leases
//! depend on how far two nodes' clocks can disagree about a duration, so the simulator makes
//! them disagree.
//!
//! Everything is integer arithmetic on the global time, so a clock gives the same readings on
//! every platform. A clock only goes forward: rates are above -100% and jumps are forward.

use serde::{Deserialize, Serialize};

use crate::raft::Millis;

/// Parts per million of the global rate.
const MILLION: i128 = 1_000_000;

/// The fastest or slowest a clock may run: ±50% of the global rate.
pub const MAX_DRIFT_PPM: i32 = 500_000;

/// One node's clock: `local(t) = since_local + (t - since_global) * (1 + ppm / 10^6)`, rounded
/// down, for global times `t >= since_global`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeClock {
    /// The global time the current rate took effect (the last rate change or jump).
    since_global: Millis,
    /// The node's time then.
    since_local: Millis,
    /// How far the clock's rate is off the global one, in parts per million (positive: it
    /// runs fast). Invariant: within `±MAX_DRIFT_PPM`, so the clock never stops.
    ppm: i32,
    /// The total of the forward jumps so far (ms), for views and traces.
    jumped: Millis,
}

impl NodeClock {
    /// A clock that reads the global time and runs at its rate.
    pub fn new() -> Self {
        Self::default()
    }

    fn check(&self) {
        debug_assert!(
            self.ppm.abs() <= MAX_DRIFT_PPM,
            "clock rate out of range: {self:?}"
        );
    }

    /// The rate offset in parts per million.
    pub fn ppm(&self) -> i32 {
        self.ppm
    }

    /// How many ms the clock jumped forward in total.
    pub fn jumped(&self) -> Millis {
        self.jumped
    }

    /// The node's time at global time `t` (`t` no earlier than the last change).
    pub fn local(&self, t: Millis) -> Millis {
        debug_assert!(t >= self.since_global, "reading a clock in its past");
        let elapsed = i128::from(t.saturating_sub(self.since_global));
        let scaled = elapsed * (MILLION + i128::from(self.ppm)) / MILLION;
        self.since_local
            .saturating_add(u64::try_from(scaled).unwrap_or(u64::MAX))
    }

    /// The earliest global time, not before `now`, at which the node's clock reads at least
    /// `deadline` (`Millis::MAX` stays `Millis::MAX`: no deadline).
    pub fn global(&self, now: Millis, deadline: Millis) -> Millis {
        if deadline == Millis::MAX {
            return Millis::MAX;
        }
        if deadline <= self.local(now) {
            return now;
        }
        // floor(x * r) >= k  <=>  x * r >= k  <=>  x >= ceil(k / r), with r = (10^6 + ppm) / 10^6.
        let k = i128::from(deadline - self.since_local);
        let rate = MILLION + i128::from(self.ppm);
        let x = (k * MILLION + rate - 1) / rate;
        let t = self
            .since_global
            .saturating_add(u64::try_from(x).unwrap_or(u64::MAX));
        debug_assert!(t == Millis::MAX || self.local(t) >= deadline);
        t.max(now)
    }

    /// From global time `now` on, the clock runs `ppm` parts per million off the global rate
    /// (clamped to `±MAX_DRIFT_PPM`).
    pub fn set_rate(&mut self, now: Millis, ppm: i32) {
        self.rebase(now);
        self.ppm = ppm.clamp(-MAX_DRIFT_PPM, MAX_DRIFT_PPM);
        self.check();
    }

    /// The clock jumps `ms` forward at global time `now`.
    pub fn jump(&mut self, now: Millis, ms: Millis) {
        self.rebase(now);
        self.since_local = self.since_local.saturating_add(ms);
        self.jumped = self.jumped.saturating_add(ms);
        self.check();
    }

    fn rebase(&mut self, now: Millis) {
        let local = self.local(now.max(self.since_global));
        self.since_global = now.max(self.since_global);
        self.since_local = local;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn an_undrifted_clock_reads_the_global_time() {
        let c = NodeClock::new();
        assert_eq!(c.local(0), 0);
        assert_eq!(c.local(12_345), 12_345);
        assert_eq!(c.global(100, 250), 250);
        assert_eq!(c.global(100, 50), 100, "a passed deadline is due now");
        assert_eq!(c.global(100, Millis::MAX), Millis::MAX);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_fast_clock_reaches_its_deadlines_early_and_a_slow_one_late() {
        let mut fast = NodeClock::new();
        fast.set_rate(0, 100_000); // +10%
        assert_eq!(fast.local(1_000), 1_100);
        assert_eq!(fast.global(0, 1_100), 1_000);
        let mut slow = NodeClock::new();
        slow.set_rate(0, -200_000); // -20%
        assert_eq!(slow.local(1_000), 800);
        assert_eq!(slow.global(0, 800), 1_000);
        // Rounding: the global time found is the first at which the clock reads the deadline.
        for (clock, deadline) in [(fast, 7), (slow, 7), (fast, 1_001), (slow, 999)] {
            let t = clock.global(0, deadline);
            assert!(clock.local(t) >= deadline);
            assert!(
                t == 0 || clock.local(t - 1) < deadline,
                "{clock:?} {deadline} {t}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rate_changes_and_jumps_keep_the_clock_monotonic() {
        let mut c = NodeClock::new();
        c.set_rate(0, 50_000);
        let before = c.local(1_000);
        c.set_rate(1_000, -50_000);
        assert_eq!(
            c.local(1_000),
            before,
            "a rate change does not move the reading"
        );
        assert_eq!(c.local(2_000), before + 950);
        c.jump(2_000, 40);
        assert_eq!(c.local(2_000), before + 990);
        assert_eq!(c.jumped(), 40);
        let mut last = 0;
        for t in 2_000..3_000 {
            let l = c.local(t);
            assert!(l >= last);
            last = l;
        }
        c.set_rate(3_000, -2_000_000);
        assert_eq!(c.ppm(), -MAX_DRIFT_PPM, "clamped: a clock never stops");
    }
}

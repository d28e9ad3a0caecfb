//! Seeded, portable randomness and hashing for the simulator.
//!
//! Every random choice of a run comes from one seed. The seed is split into independent
//! [`Stream`]s (the network's draws, each client's workload, the fault schedule, ...) so that a
//! change in one consumer — a person clicking "kill" in the playground, a test adding a client —
//! does not reshuffle the draws of the others.
//!
//! Draws are built on `next_u64` only, never on `usize` sampling, so a seed gives the same
//! numbers on 64-bit hosts and in wasm32.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The independent consumers of randomness in a run. Each gets its own ChaCha stream of the
/// same key, so they never share draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Latency, loss and duplication draws of the network.
    Network,
    /// The fault schedule and the shape of a randomized run (cluster size, workload size).
    Schedule,
    /// Seeds handed to the nodes' election-timeout RNGs.
    Nodes,
    /// The workload and retry jitter of one client (by index).
    Client(u32),
    /// How long each node's writes take to become durable, and which survive a crash.
    Disk,
    /// The membership nemesis: which member a change picks, when a refused one is retried.
    Churn,
    /// Whether a seed has fsync failures and corrupt reads in its mix (drawn with the plan,
    /// apart from the schedule so older seeds keep their shape).
    StorageMix,
    /// Which syncs fail, which records a restart reads corrupt, how long a node stopped by a
    /// failed sync stays down. Drawn only in seeds with those faults, so that every other
    /// seed's draws (and trace) stay what they were.
    StorageFaults,
}

impl Stream {
    fn id(self) -> u64 {
        match self {
            Stream::Network => 1,
            Stream::Schedule => 2,
            Stream::Nodes => 3,
            Stream::Client(i) => 1_000 + u64::from(i),
            Stream::Disk => 4,
            Stream::Churn => 5,
            Stream::StorageMix => 6,
            Stream::StorageFaults => 7,
        }
    }
}

/// A deterministic random number generator: ChaCha8 keyed by the run's seed, on one stream.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    /// The generator of `stream` for `seed`.
    pub fn new(seed: u64, stream: Stream) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream.id());
        SimRng { inner }
    }

    /// A uniformly random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform draw from `0..n` (0 when `n` is 0). Rejection sampling keeps it unbiased.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // The largest multiple of n that fits: draws at or above it would bias the result.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// A uniform draw from `lo..=hi` (`lo` when `hi <= lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// A uniform index into a collection of `len` elements (0 when empty).
    pub fn index(&mut self, len: usize) -> usize {
        // len fits in u64 on every platform, and the result is below len, so it fits in usize.
        self.below(len as u64) as usize
    }

    /// True with probability `p` (clamped to 0..=1). Always consumes exactly one draw, so the
    /// sequence of later draws does not depend on `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        let x = self.next_u64();
        if p <= 0.0 || p.is_nan() {
            false
        } else if p >= 1.0 {
            true
        } else {
            // 53 random bits as a float in [0, 1): IEEE arithmetic is the same everywhere.
            ((x >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
        }
    }

    /// An index drawn with the given relative weights (0 when all are zero or none given).
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        0
    }
}

/// SplitMix64: derives well-mixed independent seeds from (seed, a, b) — used for the nodes'
/// election RNGs, one per node and incarnation, without consuming any stream's draws.
pub fn mix_seed(seed: u64, a: u64, b: u64) -> u64 {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    splitmix(splitmix(splitmix(seed) ^ a) ^ b.rotate_left(32))
}

/// FNV-1a, 64 bits: a tiny portable hash for trace texts (the same bytes give the same hash on
/// every platform and every Rust version, unlike `std`'s hashers).
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash of everything written so far.
    pub fn finish(&self) -> u64 {
        self.0
    }

    /// The hash of `bytes`.
    pub fn hash(bytes: &[u8]) -> u64 {
        let mut h = Fnv1a::default();
        h.write(bytes);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn fnv1a_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(Fnv1a::hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv1a::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv1a::hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = {
            let mut r = SimRng::new(42, Stream::Network);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SimRng::new(42, Stream::Network);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = SimRng::new(42, Stream::Client(0));
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn first_draws_are_pinned() {
        // Pins ChaCha8 + seed_from_u64 + set_stream: if a dependency upgrade changed them, every
        // recorded seed would replay differently, and this says so first.
        let mut r = SimRng::new(1, Stream::Network);
        let got = [r.next_u64(), r.next_u64()];
        assert_eq!(got, PINNED);
    }
    const PINNED: [u64; 2] = [15_715_005_604_373_573_095, 939_185_832_570_518_534];

    #[wasm_bindgen_test(unsupported = test)]
    fn draws_stay_in_range() {
        let mut r = SimRng::new(7, Stream::Schedule);
        for _ in 0..1000 {
            let x = r.range(3, 9);
            assert!((3..=9).contains(&x));
            assert!(r.index(5) < 5);
        }
        assert_eq!(r.range(5, 5), 5);
        assert_eq!(r.below(0), 0);
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
        let hits = (0..10_000).filter(|_| r.chance(0.25)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
        let mut counts = [0u32; 3];
        for _ in 0..3000 {
            counts[r.weighted(&[1, 0, 2])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!(counts[2] > counts[0]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn mixed_seeds_differ() {
        assert_ne!(mix_seed(1, 0, 0), mix_seed(1, 1, 0));
        assert_ne!(mix_seed(1, 0, 0), mix_seed(1, 0, 1));
        assert_eq!(mix_seed(9, 2, 3), mix_seed(9, 2, 3));
    }
}

//! A budget of failed short-tag verifications, so a plugin cannot use the host as a tag oracle.
//!
//! A 4-byte tag (ANSI C12.22's EAX', an OMS CMAC truncated to 4 bytes) is found by trying
//! about 2³¹ candidates. A decoder that may ask the host "does this tag verify?" without limit
//! could forge one for a message of its choosing (a command to a meter, say) and smuggle it out
//! in its results. The [`crate::CryptoCtx`]s of one plugin (every instance, kept across calls,
//! and the instances that replace discarded ones) therefore share a budget of
//! [`SHORT_TAG_FAILURES_PER_MINUTE`] failed verifications of tags shorter than
//! [`SHORT_TAG_LEN`] per minute, refilled continuously up to one minute's worth; past that, such
//! verifications are refused with a clear error until the budget refills. An honest decoder
//! spends one failure per frame that does not verify (a wrong key, a tampered frame), so the
//! budget only bites on a fleet sending tens of thousands of bad frames a minute to one
//! plugin, and those frames are dead-lettered with the reason, not lost. Brute force becomes
//! a matter of months per tag.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A budget shared by every instance of one plugin (and the instances that replace discarded
/// ones), so neither more instances nor a trap that gets an instance replaced buys more guesses.
pub type SharedBudget = Arc<Mutex<FailureBudget>>;

/// Tags shorter than this many bytes count against the budget (GCM's 12- and 16-byte tags and
/// 8-byte CMACs do not: guessing them is hopeless anyway).
pub const SHORT_TAG_LEN: usize = 8;

/// Failed short-tag verifications one plugin instance may make per minute.
pub const SHORT_TAG_FAILURES_PER_MINUTE: u32 = 10_000;

/// A token bucket: `capacity` tokens, refilled at `capacity` per minute.
#[derive(Debug, Clone)]
pub struct FailureBudget {
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl FailureBudget {
    /// A full budget of `per_minute` failures.
    pub fn new(per_minute: u32, now: Instant) -> Self {
        let capacity = f64::from(per_minute);
        FailureBudget {
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.last {
            let minutes = now.duration_since(self.last).as_secs_f64() / 60.0;
            self.tokens = (self.tokens + minutes * self.capacity).min(self.capacity);
            self.last = now;
        }
    }

    /// A full budget of `per_minute` failures, to share.
    pub fn shared(per_minute: u32) -> SharedBudget {
        Arc::new(Mutex::new(Self::new(per_minute, Instant::now())))
    }

    /// Whether no failure may be spent now.
    pub fn exhausted(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens < 1.0
    }

    /// Records one failure.
    pub fn spend(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn spends_down_then_refills_over_a_minute() {
        let t0 = Instant::now();
        let mut b = FailureBudget::new(10, t0);
        for _ in 0..10 {
            assert!(!b.exhausted(t0));
            b.spend(t0);
        }
        assert!(b.exhausted(t0), "ten failures spend a budget of ten");
        // Six seconds refill one tenth of a minute: one failure.
        assert!(!b.exhausted(t0 + Duration::from_secs(6)));
        b.spend(t0 + Duration::from_secs(6));
        assert!(b.exhausted(t0 + Duration::from_secs(6)));
        // An hour later the budget is full again, not sixty times over.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..10 {
            assert!(!b.exhausted(later));
            b.spend(later);
        }
        assert!(b.exhausted(later));
    }

    #[test]
    fn a_clock_going_back_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut b = FailureBudget::new(1, t0);
        b.spend(t0);
        assert!(b.exhausted(t0 - Duration::from_secs(30)));
        // ... nor does it make the next minute count twice.
        assert!(b.exhausted(t0 + Duration::from_secs(30)));
        assert!(!b.exhausted(t0 + Duration::from_secs(60)));
    }
}

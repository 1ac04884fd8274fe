//! The multi loop's lease arithmetic, in one type: how many leases the
//! processor holds, how many of them are being given up by calls that
//! complete jobs, and how many a claim may ask for.
//!
//! The bound it keeps: the leases counted, less those of the outcomes being
//! completed, never exceed the limit, `max_threads + prefetch` (and the
//! async slots). Claims ask for leases up to a target within the limit,
//! which the adaptive prefetch moves; the bound holds whatever the target
//! was when a claim was reserved. A call that
//! completes jobs claims the next jobs in the same call, so the leases it
//! gives up and those it takes are counted apart until it returns; the
//! backend never holds more than the limit for this processor, and a crash
//! makes at most that many jobs run again.

/// The leases of a started multi processor. Not a lock: the pool's mutex
/// guards it with the jobs it counts.
#[derive(Debug)]
pub(super) struct LeaseBudget {
    /// The most leases held: `max_threads + prefetch`.
    limit: usize,
    /// The leases claims fill up to now: at most `limit`.
    target: usize,
    /// Leases held (jobs waiting for a worker, running, or with their
    /// outcome still to be completed) plus those reserved for claims in
    /// flight.
    held: usize,
    /// Of `held`, the leases of outcomes in calls to the backend now: each
    /// call gives them up when it returns.
    completing: usize,
    /// Jobs started whose outcome no call is completing yet.
    running: usize,
}

impl LeaseBudget {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            target: limit,
            held: 0,
            completing: 0,
            running: 0,
        }
    }

    /// The leases claims fill up to now.
    pub(super) fn target(&self) -> usize {
        self.target
    }

    /// Sets the leases claims fill up to, within the limit. Leases held
    /// beyond a lowered target stay held; no claim replaces them.
    pub(super) fn set_target(&mut self, target: usize) {
        self.target = target.min(self.limit);
    }

    /// Leases a claim may still ask for.
    pub(super) fn free(&self) -> usize {
        self.target.saturating_sub(self.held)
    }

    /// No lease is held, and no claim is in flight.
    pub(super) fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Jobs started whose outcome no call is completing yet.
    pub(super) fn running(&self) -> usize {
        self.running
    }

    /// Reserves every free lease for a claim, and returns how many.
    pub(super) fn reserve_free(&mut self) -> usize {
        let reserved = self.free();
        self.held += reserved;
        self.check();
        reserved
    }

    /// A worker started a job it took from the pool.
    pub(super) fn start(&mut self) {
        self.running += 1;
    }

    /// Gives up the lease of a started job that no call completes: its
    /// outcome was completed by its worker, or the job was not run.
    pub(super) fn give_up(&mut self) {
        self.running -= 1;
        self.held -= 1;
    }

    /// Gives up the lease of a job that was handed out and never started:
    /// a stop released it while it waited.
    pub(super) fn give_up_unstarted(&mut self) {
        self.held -= 1;
    }

    /// `outcomes` started jobs go to a call that completes them; while the
    /// processor is `claiming`, the same call claims every lease that is
    /// free once they are given up. Returns the leases reserved for it.
    pub(super) fn complete(&mut self, outcomes: usize, claiming: bool) -> usize {
        self.running -= outcomes;
        self.completing += outcomes;
        let reserved = if claiming {
            (self.target + self.completing).saturating_sub(self.held)
        } else {
            0
        };
        self.held += reserved;
        self.check();
        reserved
    }

    /// A worker completes its own job and, while the processor is
    /// `claiming` and its lease is the one over the limit at most, claims
    /// one job for itself in the same turn. Returns the leases reserved: 0
    /// or 1.
    pub(super) fn complete_own(&mut self, claiming: bool) -> usize {
        self.running -= 1;
        self.completing += 1;
        // its own lease is still counted until `land` gives it up
        let reserved = usize::from(claiming && self.held <= self.target);
        self.held += reserved;
        self.check();
        reserved
    }

    /// A call returned with `claimed` jobs, held now: gives up the
    /// `reserved` leases counted for its claim and the `completed` ones
    /// whose outcomes it completed. Returns whether a lease is free.
    pub(super) fn land(&mut self, claimed: usize, reserved: usize, completed: usize) -> bool {
        self.held = self.held + claimed - reserved - completed;
        self.completing -= completed;
        self.check();
        self.held < self.target
    }

    fn check(&self) {
        debug_assert!(
            self.held <= self.limit + self.completing,
            "{self:?}: more leases held than the limit allows"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_reserves_only_the_free_leases() {
        let mut budget = LeaseBudget::new(4);
        assert_eq!(budget.reserve_free(), 4);
        assert_eq!(budget.free(), 0);
        assert_eq!(budget.reserve_free(), 0, "nothing left to reserve");
        // the claim brought 3 of the 4 jobs it asked for
        assert!(budget.land(3, 4, 0), "the lease it did not use is free");
        assert_eq!(budget.free(), 1);
        assert!(!budget.is_empty());
    }

    #[test]
    fn completed_jobs_pay_for_the_next_claim() {
        let mut budget = LeaseBudget::new(4);
        let reserved = budget.reserve_free();
        budget.land(4, reserved, 0);
        for _ in 0..4 {
            budget.start();
        }
        // three outcomes go to one call, which may claim three more jobs:
        // four held once the call gives up the three it completes
        assert_eq!(budget.complete(3, true), 3);
        assert_eq!(budget.running(), 1);
        assert_eq!(budget.free(), 0, "a claim waits for the call");
        assert!(!budget.land(3, 3, 3), "all four leases are held again");
        assert_eq!(budget.reserve_free(), 0);
    }

    #[test]
    fn a_stopping_processor_claims_nothing_more() {
        let mut budget = LeaseBudget::new(2);
        let reserved = budget.reserve_free();
        budget.land(2, reserved, 0);
        budget.start();
        budget.start();
        assert_eq!(budget.complete(2, false), 0);
        budget.land(0, 0, 2);
        assert!(budget.is_empty(), "the workers may end");
    }

    #[test]
    fn a_worker_that_completes_its_own_job_claims_one_job_at_most() {
        let mut budget = LeaseBudget::new(2);
        let reserved = budget.reserve_free();
        budget.land(2, reserved, 0);
        budget.start();
        assert_eq!(budget.complete_own(true), 1);
        budget.land(1, 1, 1);
        assert_eq!(budget.free(), 0, "two held: the claimed job and the other");
        budget.start();
        assert_eq!(budget.complete_own(false), 0, "not while stopping");
        budget.land(0, 0, 1);
        assert_eq!(budget.free(), 1);
    }

    #[test]
    fn claims_fill_up_to_the_target_and_a_lowered_one_takes_nothing_back() {
        let mut budget = LeaseBudget::new(6);
        budget.set_target(2);
        assert_eq!(budget.reserve_free(), 2, "claims stop at the target");
        budget.land(2, 2, 0);
        budget.set_target(9);
        assert_eq!(budget.target(), 6, "the target stays within the limit");
        assert_eq!(budget.reserve_free(), 4);
        budget.land(4, 4, 0);
        for _ in 0..6 {
            budget.start();
        }
        budget.set_target(2);
        // six held, two wanted: the call completing three claims nothing
        assert_eq!(budget.complete(3, true), 0);
        assert!(!budget.land(0, 0, 3), "three held, still above the target");
        assert_eq!(budget.complete(2, true), 1, "back to the target of two");
    }

    #[test]
    fn a_job_not_run_gives_its_lease_up() {
        let mut budget = LeaseBudget::new(1);
        let reserved = budget.reserve_free();
        budget.land(1, reserved, 0);
        budget.start();
        budget.give_up();
        assert!(budget.is_empty());
        assert_eq!(budget.free(), 1);
    }

    /// Any order of the loop's steps keeps the bound, and a drained
    /// processor holds nothing.
    #[test]
    fn the_bound_holds_whatever_the_order_of_the_steps() {
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let limit = rng.usize(1..8);
            let mut budget = LeaseBudget::new(limit);
            // jobs held and not started, and calls in flight: (claim
            // reserved, outcomes completed)
            let mut waiting = 0;
            let mut calls: Vec<(usize, usize)> = Vec::new();
            for _ in 0..500 {
                let claiming = rng.u8(..10) != 0;
                if rng.u8(..8) == 0 {
                    budget.set_target(rng.usize(..=limit + 2));
                }
                match rng.u8(..6) {
                    0 if claiming => calls.push((budget.reserve_free(), 0)),
                    1 if waiting > 0 => {
                        waiting -= 1;
                        budget.start();
                    }
                    2 if budget.running() > 0 => {
                        let outcomes = rng.usize(1..=budget.running());
                        calls.push((budget.complete(outcomes, claiming), outcomes));
                    }
                    3 if budget.running() > 0 => {
                        calls.push((budget.complete_own(claiming), 1));
                    }
                    4 if budget.running() > 0 => budget.give_up(),
                    5 if !calls.is_empty() => {
                        let (reserved, completed) = calls.swap_remove(rng.usize(..calls.len()));
                        let claimed = rng.usize(..=reserved);
                        waiting += claimed;
                        budget.land(claimed, reserved, completed);
                    }
                    _ => {}
                }
                let held =
                    waiting + budget.running() + calls.iter().map(|c| c.0 + c.1).sum::<usize>();
                assert_eq!(
                    budget.held, held,
                    "seed {seed}: every lease is accounted for"
                );
                assert!(
                    budget.held <= limit + budget.completing,
                    "seed {seed}: {budget:?}"
                );
            }
            for (reserved, completed) in calls.drain(..) {
                budget.land(0, reserved, completed);
            }
            while waiting > 0 {
                waiting -= 1;
                budget.start();
            }
            while budget.running() > 0 {
                budget.give_up();
            }
            assert!(budget.is_empty(), "seed {seed}: {budget:?}");
        }
    }
}

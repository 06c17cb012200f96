//! Which queue a free handler slot takes from next, when a consumer reads
//! several queues in order of urgency.
//!
//! Policy: strict priority with an aging guard. A free slot takes the most
//! urgent queue with work waiting, except that a less urgent queue with work
//! waiting that was passed over `starvation_limit` times in a row gets the
//! next slot, so a steady stream of urgent work slows the rest down but never
//! stops it. Prefetch bounds how much of each queue one consumer buffers.

#[derive(Debug, Clone)]
pub struct PriorityPicker {
    starvation_limit: u32,
    /// Consecutive picks that passed over waiting work, per queue (index 0,
    /// the most urgent, is never passed over).
    passed_over: Vec<u32>,
}

impl PriorityPicker {
    pub fn new(queues: usize, starvation_limit: u32) -> Self {
        PriorityPicker { starvation_limit: starvation_limit.max(1), passed_over: vec![0; queues] }
    }

    /// Picks among the queues with work waiting (`waiting(i)` says which);
    /// None when nothing waits.
    pub fn pick(&mut self, waiting: impl Fn(usize) -> bool) -> Option<usize> {
        let ready: Vec<usize> = (0..self.passed_over.len()).filter(|i| waiting(*i)).collect();
        // The most urgent of the starved ones, if any, else the most urgent ready.
        let chosen = ready
            .iter()
            .copied()
            .find(|i| self.passed_over[*i] >= self.starvation_limit)
            .or_else(|| ready.first().copied())?;
        for &i in &ready {
            if i == chosen {
                self.passed_over[i] = 0;
            } else if i > chosen {
                self.passed_over[i] += 1;
            }
        }
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGH: usize = 0;
    const NORMAL: usize = 1;
    const LOW: usize = 2;

    #[test]
    fn most_urgent_first() {
        let mut picker = PriorityPicker::new(3, 100);
        assert_eq!(picker.pick(|_| true), Some(HIGH));
        assert_eq!(picker.pick(|q| q != HIGH), Some(NORMAL));
        assert_eq!(picker.pick(|q| q == LOW), Some(LOW));
        assert_eq!(picker.pick(|_| false), None);
    }

    #[test]
    fn waiting_low_work_gets_a_slot_after_the_limit() {
        let mut picker = PriorityPicker::new(3, 3);
        let picks: Vec<_> = (0..8).map(|_| picker.pick(|q| q == HIGH || q == LOW).unwrap()).collect();
        assert_eq!(picks, vec![HIGH, HIGH, HIGH, LOW, HIGH, HIGH, HIGH, LOW]);
    }

    #[test]
    fn no_debt_builds_up_while_nothing_waits() {
        let mut picker = PriorityPicker::new(3, 2);
        for _ in 0..10 {
            assert_eq!(picker.pick(|q| q == HIGH), Some(HIGH));
        }
        // LOW only now has work: it was never passed over, so HIGH still goes first.
        assert_eq!(picker.pick(|_| true), Some(HIGH));
        assert_eq!(picker.pick(|_| true), Some(HIGH));
        assert_eq!(picker.pick(|_| true), Some(NORMAL), "NORMAL and LOW both starved; NORMAL is more urgent");
        assert_eq!(picker.pick(|_| true), Some(LOW));
    }
}

//! Which buffered delivery a free worker slot takes next.
//!
//! Policy (documented in the README): strict priority with an aging guard.
//! A free slot takes HIGH before NORMAL before LOW. A lower priority that has
//! work waiting but was passed over `starvation_limit` times in a row gets
//! the next slot, so a steady stream of HIGH work slows LOW down but never
//! stops it. Prefetch bounds how much of each queue one worker buffers.

use job_model::JobPriority;

#[derive(Debug, Clone)]
pub struct PriorityPicker {
    starvation_limit: u32,
    /// Consecutive picks that passed over waiting work, per priority
    /// (index 0 = HIGH, which is never passed over).
    passed_over: [u32; 3],
}

fn index(p: JobPriority) -> usize {
    match p {
        JobPriority::High => 0,
        JobPriority::Normal => 1,
        JobPriority::Low => 2,
    }
}

impl PriorityPicker {
    pub fn new(starvation_limit: u32) -> Self {
        PriorityPicker { starvation_limit: starvation_limit.max(1), passed_over: [0; 3] }
    }

    /// Picks among the priorities that have work waiting (`waiting` says
    /// which); None when nothing waits.
    pub fn pick(&mut self, waiting: impl Fn(JobPriority) -> bool) -> Option<JobPriority> {
        let ready: Vec<JobPriority> = JobPriority::ALL.into_iter().filter(|p| waiting(*p)).collect();
        // The most urgent of the starved ones, if any, else the most urgent ready.
        let chosen = ready
            .iter()
            .copied()
            .find(|p| self.passed_over[index(*p)] >= self.starvation_limit)
            .or_else(|| ready.first().copied())?;
        for p in &ready {
            if *p == chosen {
                self.passed_over[index(*p)] = 0;
            } else if p > &chosen {
                self.passed_over[index(*p)] += 1;
            }
        }
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobPriority::*;

    #[test]
    fn most_urgent_first() {
        let mut picker = PriorityPicker::new(100);
        assert_eq!(picker.pick(|_| true), Some(High));
        assert_eq!(picker.pick(|p| p != High), Some(Normal));
        assert_eq!(picker.pick(|p| p == Low), Some(Low));
        assert_eq!(picker.pick(|_| false), None);
    }

    #[test]
    fn waiting_low_work_gets_a_slot_after_the_limit() {
        let mut picker = PriorityPicker::new(3);
        let picks: Vec<_> = (0..8).map(|_| picker.pick(|p| p == High || p == Low).unwrap()).collect();
        assert_eq!(picks, vec![High, High, High, Low, High, High, High, Low]);
    }

    #[test]
    fn no_debt_builds_up_while_nothing_waits() {
        let mut picker = PriorityPicker::new(2);
        for _ in 0..10 {
            assert_eq!(picker.pick(|p| p == High), Some(High));
        }
        // LOW only now has work: it was never passed over, so HIGH still goes first.
        assert_eq!(picker.pick(|_| true), Some(High));
        assert_eq!(picker.pick(|_| true), Some(High));
        assert_eq!(picker.pick(|_| true), Some(Normal), "NORMAL and LOW both starved; NORMAL is more urgent");
        assert_eq!(picker.pick(|_| true), Some(Low));
    }
}

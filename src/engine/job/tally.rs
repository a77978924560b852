//! Counting files as their items come in: scored, failed or empty, once all their items are in
//! (a file split into pieces spans mini-batches, which finish in any order).

use super::work::ItemOutcome;
use crate::engine::plan::Plan;

/// Counts files as scored, failed or empty from their items' outcomes, which arrive in any order.
pub(super) struct FileTally {
    /// Items of each file not yet in.
    left: Vec<usize>,
    failed: Vec<bool>,
    /// Rows each file held so far.
    rows: Vec<u64>,
}

/// What one mini-batch's outcomes changed.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Tallied {
    pub scored: u64,
    pub failed: u64,
    /// Files complete with no rows at all.
    pub empty: Vec<usize>,
}

impl FileTally {
    pub fn new(plan: &Plan) -> FileTally {
        FileTally {
            left: plan.items_per_file(),
            failed: vec![false; plan.files.len()],
            rows: vec![0; plan.files.len()],
        }
    }

    /// Takes in one mini-batch's outcomes. A file fails with its first failed item; it is
    /// scored (or empty, holding no rows) when its last item is in, none failed.
    pub fn add(&mut self, outcomes: &[(usize, ItemOutcome)]) -> Tallied {
        let mut t = Tallied::default();
        for &(f, o) in outcomes {
            if o == ItemOutcome::Stopped {
                continue;
            }
            self.left[f] = self.left[f].saturating_sub(1);
            if let ItemOutcome::Scored(rows) = o {
                self.rows[f] += rows;
            }
            if o == ItemOutcome::Failed && !self.failed[f] {
                self.failed[f] = true;
                t.failed += 1;
            } else if self.left[f] == 0 && !self.failed[f] {
                if self.rows[f] == 0 {
                    t.empty.push(f);
                } else {
                    t.scored += 1;
                }
            }
        }
        t
    }

    /// Leaves out the items of mini-batches scored before (`done`); returns how many files
    /// they completed. What became of those files is read from their parts at the assembly.
    pub fn skip_done(&mut self, plan: &Plan, done: &std::collections::BTreeSet<usize>) -> u64 {
        let mut files = 0;
        for &mb in done {
            for item in plan.mini_batches.get(mb).cloned().unwrap_or_default() {
                let f = plan.items[item].file;
                self.left[f] = self.left[f].saturating_sub(1);
                if self.left[f] == 0 {
                    files += 1;
                }
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_scored_failed_or_empty_once_all_their_items_are_in() {
        let mut t = FileTally { left: vec![2, 1, 1, 1], failed: vec![false; 4], rows: vec![0; 4] };
        assert_eq!(t.add(&[(0, ItemOutcome::Scored(0))]), Tallied::default());
        let got = t.add(&[
            (0, ItemOutcome::Scored(5)),
            (1, ItemOutcome::Scored(0)),
            (2, ItemOutcome::Failed),
            (3, ItemOutcome::Stopped),
        ]);
        assert_eq!(got, Tallied { scored: 1, failed: 1, empty: vec![1] });
    }
}

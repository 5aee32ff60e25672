//! The writer's side of a type's timeout: a run in flight past its
//! deadline is told to stop (it sees a cancel), and the executor records
//! its end as timed out.

use std::time::Instant;

use super::Writer;

impl Writer {
    /// Stops the runs past their type's timeout. Looked at on every pass,
    /// which comes at least every progress interval while runs are in
    /// flight; the job sees it as a cancel and its end is recorded as
    /// timed out.
    pub(super) fn time_out_overdue(&mut self) {
        let now = Instant::now();
        for (id, f) in &mut self.in_flight {
            if f.deadline.is_some_and(|d| d <= now) {
                f.deadline = None;
                log::warn!("run {id} ({}) passed its timeout; stopping it", f.job_name);
                f.shared.time_out();
            }
        }
    }
}

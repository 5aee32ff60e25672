//! Enqueueing a run after others (`--after 12,13`, the API's `after`): it
//! waits as WAITING until they all COMPLETED (the worker then queues it),
//! and is CANCELLED, naming the run, when one fails or is cancelled. Only
//! existing runs can be named, so no cycle is possible.

use super::{Actor, EnqueueRequest, Manager};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobRun, JobStatus};
use crate::store::deps;

/// Most runs one run may wait for.
const MAX_AFTER: usize = 100;

impl Manager {
    /// Enqueues a run that waits for the runs `after`, its audit row in the
    /// same commit. A named run that does not exist is 404; one that already
    /// failed or was cancelled is a conflict (the run could never start).
    pub fn enqueue_after(&self, req: &EnqueueRequest, after: &[i64], by: &Actor) -> Result<JobRun> {
        if after.is_empty() || after.len() > MAX_AFTER {
            return Err(Error::Invalid(format!(
                "after names 1 to {MAX_AFTER} runs, got {}",
                after.len()
            )));
        }
        let row = self.new_runs(std::slice::from_ref(req))?.remove(0);
        let now = Timestamp::now().to_text();
        let id = self.store.write("enqueue waiting run", |tx| {
            for dep in after {
                match deps::status_of(tx, *dep)? {
                    None => {
                        return Err(Error::NotFound {
                            what: "job run",
                            id: dep.to_string(),
                        });
                    }
                    Some(s @ (JobStatus::Failed | JobStatus::Cancelled)) => {
                        return Err(Error::Conflict(format!(
                            "run {dep} is {s}, so a run after it could never start"
                        )));
                    }
                    Some(_) => {}
                }
            }
            let id = deps::insert_waiting(tx, &row, after, &now)?;
            // Those already COMPLETED: it may be queued at once.
            deps::resolve_waiting(tx, &now)?;
            by.row(
                "run.enqueue",
                Some(format!("run {id}")),
                Some(req.job_name.clone()),
            )
            .insert(tx, &now)?;
            Ok(id)
        })?;
        self.get(id)
    }
}

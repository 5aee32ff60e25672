//! The worker status as the API and the live events show it: the
//! manager's status plus whether the worker is the one this server
//! supervises. One place for both, so that the watcher does not reach into
//! the web server for it.

use serde_json::Value;

use super::WorkerStatus;

impl WorkerStatus {
    /// The status object of `GET /api/worker` and of a `worker` event;
    /// `supervised_pid` is the pid of the worker this server started.
    pub fn view(&self, supervised_pid: Option<u32>) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        let supervised = match (&self.worker, supervised_pid) {
            (Some(w), Some(pid)) => w.state.is_active() && w.pid == i64::from(pid),
            _ => false,
        };
        if let Value::Object(m) = &mut v {
            m.insert("supervised".into(), supervised.into());
        }
        v
    }
}

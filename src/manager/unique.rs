//! Enqueueing unique runs: with a key given (`--unique-key`, `uniqueKey`)
//! or derived from the type's `unique` parameters, a second enqueue while
//! a run with the key waits or runs returns that run instead of a new one.

use super::{Actor, EnqueueRequest, Manager, delayed};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::JobRun;
use crate::store::unique::{self, Keyed};

/// The longest key accepted.
const MAX_KEY_CHARS: usize = 256;

/// What an enqueue did.
#[derive(Debug, Clone)]
pub struct Enqueued {
    /// The new run, or the live run that holds the key.
    pub run: JobRun,
    /// Set when no run was made: the id of the one that holds the key.
    pub duplicate_of: Option<i64>,
}

impl Manager {
    /// Enqueues like [`Manager::enqueue_at`], unique by `key` (or by the
    /// type's `unique` parameters when no key is given).
    pub fn enqueue_keyed(
        &self,
        req: &EnqueueRequest,
        run_at: Option<Timestamp>,
        key: Option<&str>,
        by: &Actor,
    ) -> Result<Enqueued> {
        let Some(key) = self.unique_key(req, key)? else {
            let run = self.enqueue_at(req, run_at, by)?;
            return Ok(Enqueued {
                run,
                duplicate_of: None,
            });
        };
        let at = delayed::due_text(run_at, Timestamp::now())?;
        let row = self.new_runs(std::slice::from_ref(req))?.remove(0).at(at);
        let now = Timestamp::now().to_text();
        let keyed = self.store.write("enqueue unique run", |tx| {
            let keyed = unique::insert_keyed(tx, &row, &key, &now)?;
            if let Keyed::Inserted(id) = keyed {
                by.row(
                    "run.enqueue",
                    Some(format!("run {id}")),
                    Some(req.job_name.clone()),
                )
                .insert(tx, &now)?;
            }
            Ok(keyed)
        })?;
        Ok(match keyed {
            Keyed::Inserted(id) => Enqueued {
                run: self.get(id)?,
                duplicate_of: None,
            },
            Keyed::Existing(id) => Enqueued {
                run: self.get(id)?,
                duplicate_of: Some(id),
            },
        })
    }

    /// The key a run is unique by: the one given, else one made of the
    /// type's `unique` parameters (after defaults), else none.
    fn unique_key(&self, req: &EnqueueRequest, given: Option<&str>) -> Result<Option<String>> {
        if let Some(k) = given {
            if k.is_empty() || k.chars().count() > MAX_KEY_CHARS {
                return Err(Error::Invalid(format!(
                    "a unique key has 1 to {MAX_KEY_CHARS} characters"
                )));
            }
            return Ok(Some(k.to_string()));
        }
        let names = &self.registry.policy(&req.job_name).unique;
        if names.is_empty() {
            return Ok(None);
        }
        let params = self
            .registry
            .get(&req.job_name)?
            .validate(&req.parameters)?;
        let values: Vec<&serde_json::Value> = names
            .iter()
            .map(|n| params.get(n).unwrap_or(&serde_json::Value::Null))
            .collect();
        Ok(Some(format!(
            "{}:{}",
            req.job_name,
            serde_json::Value::from(values.into_iter().cloned().collect::<Vec<_>>())
        )))
    }
}

//! The rules for a run's due time (`enqueue --at`/`--in`, the API's
//! `runAt`): a time still to come makes the run SCHEDULED; one that has
//! passed queues it at once, as a user asking "at 06:00" at 06:01 expects.

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// The furthest ahead a run may be scheduled (100 years): beyond it a
/// typing mistake is likelier than a plan, and the stored text form keeps
/// four-digit years.
const MAX_AHEAD_MS: i64 = 100 * 366 * 86_400_000;

/// The stored `runAt` of a run due at `run_at`, seen at `now`: `None`
/// (queue it now) when it is not in the future.
pub(super) fn due_text(run_at: Option<Timestamp>, now: Timestamp) -> Result<Option<String>> {
    let Some(at) = run_at else {
        return Ok(None);
    };
    if at.0 > now.0.saturating_add(MAX_AHEAD_MS) {
        return Err(Error::Invalid(format!(
            "runAt {} is more than 100 years ahead",
            at.to_text()
        )));
    }
    Ok((at > now).then(|| at.to_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_future_times_delay_a_run() {
        let now = Timestamp(1_800_000_000_000);
        assert_eq!(due_text(None, now).unwrap(), None);
        assert_eq!(due_text(Some(now), now).unwrap(), None);
        assert_eq!(due_text(Some(now.plus_ms(-1)), now).unwrap(), None);
        assert_eq!(
            due_text(Some(now.plus_ms(1)), now).unwrap(),
            Some(now.plus_ms(1).to_text())
        );
        assert!(due_text(Some(now.plus_ms(MAX_AHEAD_MS + 1)), now).is_err());
    }
}

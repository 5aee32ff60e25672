//! Migrations: refinery's embedded history, applied at start, with the
//! foreign-key switch a table rebuild needs and the schema_version raise a
//! hand edit of sqlite_schema needs.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use rust_embed::RustEmbed;
use siphasher::sip::SipHasher13;

use super::{Connection, Store, check, retry_start_race};
use crate::error::{Error, Result};

pub(super) mod embedded {
    refinery::embed_migrations!("migrations");
}

impl Store {
    /// Applies pending migrations; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>> {
        // A lock held past the busy timeout is a busy error, not retried:
        // SQLite's busy handler has already waited for it.
        retry_start_race(|m| m.starts_with("migrate:"), || self.migrate_once())
    }

    fn migrate_once(&self) -> Result<Vec<String>> {
        let mut conn = self.conn()?;
        // Refinery reads its history inside a write transaction, so every
        // command would wait for (and, past the busy timeout, fail on) a
        // lock another process holds even with nothing to apply: a current
        // schema is recognised with a plain read instead, at first without
        // refinery (see `history`).
        if check::applied(&conn)? == history() {
            return Ok(Vec::new());
        }
        let schema = check::schema(&conn)?;
        if schema.missing.is_empty() && schema.changed.is_empty() && schema.unknown.is_empty() {
            return Ok(Vec::new());
        }
        // Off while migrating: a migration that rebuilds a table (V9) drops
        // the old one, and with foreign keys on that first deletes its rows
        // and, through ON DELETE CASCADE, every row that refers to them.
        // The pragma cannot change inside the migration's transaction.
        let fk = |conn: &Connection, on: &str| {
            conn.pragma_update(None, "foreign_keys", on)
                .map_err(Error::db("set foreign_keys for migrations"))
        };
        fk(&conn, "OFF")?;
        let report = embedded::migrations::runner().run(&mut *conn);
        fk(&conn, "ON")?;
        let report = report.map_err(|e| migrate_error(&self.path, e))?;
        let applied: Vec<String> = report
            .applied_migrations()
            .iter()
            .map(|m| format!("V{}__{}", m.version(), m.name()))
            .collect();
        if report
            .applied_migrations()
            .iter()
            .any(|m| m.version() == 16)
        {
            bump_schema_version(&conn)?;
        }
        Ok(applied)
    }
}

/// The migration files, as refinery embeds them.
#[derive(RustEmbed)]
#[folder = "migrations"]
struct Files;

/// The history refinery records once every embedded migration is applied:
/// version → (name, checksum). Made without refinery, which parses each
/// file name with a Unicode regular expression whose compilation (about 4
/// million instructions, over a millisecond) was most of the check every
/// command and every start makes. The checksum is refinery's (SipHash-1-3
/// over the name, the version and the SQL; the test below holds it to
/// refinery's own). A file this does not read, or a later refinery that
/// sums otherwise, makes no history match it, and the full comparison runs.
fn history() -> BTreeMap<i64, (String, String)> {
    Files::iter()
        .filter_map(|file| {
            let (version, name) = file
                .strip_suffix(".sql")?
                .strip_prefix('V')?
                .split_once("__")?;
            let version: i32 = version.parse().ok()?;
            let data = Files::get(&file)?.data;
            let mut sum = SipHasher13::new();
            name.hash(&mut sum);
            version.hash(&mut sum);
            std::str::from_utf8(&data).ok()?.hash(&mut sum);
            Some((
                i64::from(version),
                (name.to_string(), sum.finish().to_string()),
            ))
        })
        .collect()
}

/// Raises `schema_version` after a migration edited `sqlite_schema` by hand
/// (V16), the last step of SQLite's procedure for it: every connection,
/// this one included, then reads the tables' new text.
fn bump_schema_version(conn: &Connection) -> Result<()> {
    let op = "raise schema_version";
    let v: i64 = conn
        .pragma_query_value(None, "schema_version", |r| r.get(0))
        .map_err(Error::db(op))?;
    conn.pragma_update(None, "schema_version", v + 1)
        .map_err(Error::db(op))
}

/// A failed migration as an error: SQLite's own when the database stayed
/// locked past the busy timeout (a busy error, for the caller to retry
/// later), else an open error naming the migration step.
fn migrate_error(path: &Path, e: refinery::Error) -> Error {
    let sqlite = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<rusqlite::Error>());
    if let Some(rusqlite::Error::SqliteFailure(code, message)) = sqlite {
        let busy = Error::Db {
            op: "migrate database",
            source: rusqlite::Error::SqliteFailure(*code, message.clone()),
        };
        if busy.is_busy() {
            return busy;
        }
    }
    Error::Open {
        path: path.to_path_buf(),
        message: format!("migrate: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn the_history_made_without_refinery_is_refinery_s() {
        let refinery: BTreeMap<i64, (String, String)> = super::embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| {
                let v = i64::from(m.version());
                (v, (m.name().to_string(), m.checksum().to_string()))
            })
            .collect();
        assert!(!refinery.is_empty());
        assert_eq!(super::history(), refinery);
    }
}

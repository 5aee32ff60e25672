//! Unit tests of `error.rs`.

use super::*;

fn sqlite_failure(code: i32) -> Error {
    Error::Db {
        op: "enqueue runs",
        source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
    }
}

#[test]
fn a_full_disk_is_reported_as_such_to_every_caller() {
    let full = sqlite_failure(rusqlite::ffi::SQLITE_FULL);
    assert_eq!((full.code(), full.http_status()), ("disk_full", 507));
    let copy = full.duplicate();
    assert_eq!((copy.code(), copy.http_status()), ("disk_full", 507));
    assert_eq!(copy.to_string(), full.to_string());
    let io = sqlite_failure(rusqlite::ffi::SQLITE_IOERR_WRITE).duplicate();
    assert_eq!((io.code(), io.http_status()), ("database_error", 500));
    assert!(full.is_refused_write() && io.is_refused_write());
    assert!(!sqlite_failure(rusqlite::ffi::SQLITE_CONSTRAINT).is_refused_write());
    let other = Error::Internal("run ids are exhausted".into()).duplicate();
    assert_eq!(
        (other.code(), other.to_string().as_str()),
        ("internal_error", "run ids are exhausted")
    );
}

#[test]
fn each_class_has_one_status_one_exit_code_and_one_code() {
    let table: Vec<_> = ErrorClass::ALL
        .iter()
        .map(|c| (c.code(), c.http_status(), c.exit_code()))
        .collect();
    assert_eq!(
        table,
        [
            ("invalid_input", 400, 2),
            ("not_found", 404, 3),
            ("conflict", 409, 4),
            ("busy", 503, 5),
            ("disk_full", 507, 6),
            ("internal_error", 500, 1),
        ]
    );
    let cases = [
        (Error::Invalid("x".into()), ErrorClass::Invalid),
        (
            Error::UnknownJobType {
                name: "x".into(),
                suggestion: None,
            },
            ErrorClass::Invalid,
        ),
        (
            Error::NotFound {
                what: "job run",
                id: "1".into(),
            },
            ErrorClass::NotFound,
        ),
        (Error::Conflict("x".into()), ErrorClass::Conflict),
        (Error::WorkerRunning("x".into()), ErrorClass::Conflict),
        (sqlite_failure(rusqlite::ffi::SQLITE_BUSY), ErrorClass::Busy),
        (
            sqlite_failure(rusqlite::ffi::SQLITE_LOCKED),
            ErrorClass::Busy,
        ),
        (
            sqlite_failure(rusqlite::ffi::SQLITE_FULL),
            ErrorClass::DiskFull,
        ),
        (
            sqlite_failure(rusqlite::ffi::SQLITE_CONSTRAINT),
            ErrorClass::Internal,
        ),
        (Error::Config("x".into()), ErrorClass::Internal),
        (Error::Internal("x".into()), ErrorClass::Internal),
    ];
    for (e, class) in cases {
        assert_eq!(e.class(), class, "{e:?}");
        assert_eq!(e.http_status(), class.http_status(), "{e:?}");
        assert_eq!(e.exit_code(), class.exit_code(), "{e:?}");
        // A group commit's other callers get the same class.
        assert_eq!(e.duplicate().class(), class, "{e:?}");
    }
    assert_eq!(sqlite_failure(rusqlite::ffi::SQLITE_BUSY).code(), "busy");
}

#[test]
fn an_error_that_cannot_be_copied_stays_internal() {
    let odd = Error::Db {
        op: "enqueue runs",
        source: rusqlite::Error::InvalidQuery,
    };
    let copy = odd.duplicate();
    assert_eq!((copy.code(), copy.http_status()), ("internal_error", 500));
    assert_eq!(copy.to_string(), odd.to_string());
}

#[test]
fn suggests_close_names_only() {
    let names = ["demo-known-total", "demo-unknown-total", "prune-history"];
    assert_eq!(
        suggest("demo-known-totl", names).as_deref(),
        Some("demo-known-total")
    );
    assert_eq!(suggest("zzzzzzzzzzzzzzzzzzzzzzzz", names), None);
}

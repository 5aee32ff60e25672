//! Unit tests of the clocks.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::thread;

use super::*;

const T0: Timestamp = Timestamp(1_959_000_000_000);

/// A file path of its own for each test (removed with its directory).
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jobmgr-clock-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempFile(dir.join("now"))
    }

    fn write(&self, text: &str) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write clock file");
        std::fs::rename(&tmp, &self.0).expect("rename clock file");
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn a_manual_clock_stands_still_until_moved() {
    let hand = ManualClock::new(T0);
    let clock = hand.clock();
    assert_eq!(clock.now(), T0);
    assert_eq!(clock.now(), T0);
    hand.advance(1_500);
    assert_eq!(clock.now(), T0.plus_ms(1_500));
    hand.set(Timestamp(42));
    assert_eq!(clock.now(), Timestamp(42));
}

#[test]
fn an_offset_clock_runs_with_the_system_clock() {
    let day = 86_400_000;
    let before = system_now();
    let t = Clock::offset(-day).now();
    let after = system_now();
    assert!(
        before.plus_ms(-day) <= t && t <= after.plus_ms(-day),
        "{t:?}"
    );
}

#[test]
fn a_driven_clock_reads_its_file_and_keeps_the_last_good_time() {
    let file = TempFile::new("driven");
    file.write("2031-05-06T07:08:09.000Z\n");
    let clock = Clock::driven(&file.0).expect("driven clock");
    let t = Timestamp::parse("2031-05-06T07:08:09.000Z").expect("parse");
    assert_eq!(clock.now(), t);
    file.write(&(t.0 + 2_500).to_string());
    assert_eq!(clock.now(), t.plus_ms(2_500));
    // Caught mid-rewrite (empty) or removed: the last time read stands.
    std::fs::write(&file.0, "").expect("truncate");
    assert_eq!(clock.now(), t.plus_ms(2_500));
    std::fs::remove_file(&file.0).expect("remove");
    assert_eq!(clock.now(), t.plus_ms(2_500));
}

#[test]
fn the_test_clock_settings_are_checked() {
    let clock = |o: Option<&str>, f: Option<&Path>| Clock::from_settings(o, f);
    assert!(
        clock(None, None)
            .expect("system")
            .describe_test_clock()
            .is_none()
    );
    assert!(clock(Some(""), Some(Path::new(""))).is_ok_and(|c| matches!(c.0, Kind::System)));
    assert!(matches!(
        clock(Some(" -5000 "), None),
        Ok(Clock(Kind::Offset(-5000)))
    ));
    let bad = clock(Some("5s"), None).expect_err("5s");
    assert_eq!(
        bad.to_string(),
        "JOBMGR_TEST_CLOCK_OFFSET_MS=\"5s\": expected a whole number of milliseconds"
    );
    let file = TempFile::new("settings");
    let both = clock(Some("1"), Some(&file.0)).expect_err("both");
    assert!(both.to_string().contains("are both set"), "{both}");
    let missing = clock(None, Some(&file.0)).expect_err("missing file");
    assert!(missing.to_string().contains("read test clock"), "{missing}");
    file.write("soon");
    let garbled = clock(None, Some(&file.0)).expect_err("garbled file");
    assert!(
        garbled.to_string().contains("\"soon\" is neither"),
        "{garbled}"
    );
}

#[test]
fn a_unit_test_can_run_its_thread_on_a_manual_clock() {
    let hand = ManualClock::new(T0);
    {
        let _on = use_on_this_thread(hand.clock());
        assert_eq!(Timestamp::now(), T0);
        hand.advance(250);
        assert_eq!(now(), T0.plus_ms(250));
        // Another thread keeps the process clock.
        let there = thread::spawn(Timestamp::now).join().expect("thread");
        assert!(there > T0.plus_ms(-T0.0 / 2) && there < T0, "{there:?}");
    }
    assert!(Timestamp::now() < T0, "the system clock is back");
}

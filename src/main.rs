//! The jobmgr binary: parse arguments, run, turn the result into an exit code.

/// mimalloc rather than glibc's allocator: strings and JSON built on one
/// thread and freed on another (log lines, HTTP requests, runs) cost glibc
/// a locked arena and its consolidations, a sixth of `serve`'s CPU under 8
/// HTTP clients. With mimalloc, real jobs through a worker ran 21 to 27 %
/// faster and log lines 9 %, the rest within noise (`bench --rounds 5
/// --compare`). Its memory use: see `jobmgr::memory`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    jobmgr::memory::setup();
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,refinery_core=warn"),
    )
    .format_timestamp_millis()
    .init();
    log_panics();
    let code = match jobmgr::run(std::env::args_os()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jobmgr: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// A panic (a job's, caught and recorded as its run's failure, or a bug)
/// becomes one error line of jobmgr's own log, journal-friendly, instead of
/// the default hook's lines on stderr; the backtrace only when asked for
/// with `RUST_BACKTRACE`.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            log::error!("thread '{name}' panicked{at}: {message}\n{backtrace}");
        } else {
            log::error!("thread '{name}' panicked{at}: {message}");
        }
    }));
}

//! The worker supervisor of `jobmgr serve`: runs `jobmgr worker` as a child
//! process, restarts it with backoff when it exits unexpectedly, leaves it
//! stopped after a requested stop (exit code 0) until asked to start again,
//! never starts one while another process holds the worker lock (a worker
//! started by hand is left alone), and on shutdown sends its own child
//! SIGTERM, as graceful as a signal from a shell, and waits for it.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::runner::lock_path;

/// First delay before restarting a worker that exited unexpectedly.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest delay between restarts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the supervisor looks at its child.
const TICK: Duration = Duration::from_millis(100);
/// Extra time a child gets after its own drain timeout before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(15);

enum Cmd {
    Start,
    StopRequested,
    Shutdown,
}

/// Handle on the supervisor thread.
pub struct Supervisor {
    tx: Sender<Cmd>,
    pid: Arc<AtomicU32>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A cheap, cloneable view of which process the supervisor runs.
#[derive(Clone)]
pub struct ChildPid(Arc<AtomicU32>);

impl ChildPid {
    /// The pid of the supervised worker, if one is running.
    pub fn get(&self) -> Option<u32> {
        Some(self.0.load(Ordering::Relaxed)).filter(|p| *p != 0)
    }

    /// The pid of the supervised worker if its process is alive, running
    /// or stopped: the question to ask before declaring it dead. The child
    /// is ours and not yet reaped, so its pid belongs to no one else; one
    /// that has exited is a zombie (state Z) until the supervisor reaps it.
    /// None when /proc cannot tell.
    pub fn alive(&self) -> Option<u32> {
        let pid = self.get()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The state follows the command name, which is in parentheses and
        // may itself contain spaces or parentheses.
        let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
        (!matches!(state, "Z" | "X" | "x")).then_some(pid)
    }
}

/// Told the pid of a supervised worker that exited unexpectedly (so that
/// its row and runs are resolved at once, not after stale-after).
pub type OnExit = Box<dyn Fn(u32) + Send>;

struct Loop {
    exe: PathBuf,
    on_exit: OnExit,
    settings: Settings,
    pid: Arc<AtomicU32>,
    child: Option<Child>,
    want: bool,
    /// A start arrived while the previous child was still exiting.
    start_after_exit: bool,
    backoff: Duration,
    next_try: Instant,
}

impl Supervisor {
    /// Starts the supervisor thread; with `autostart` it starts a worker at
    /// once (unless another process already runs one).
    pub fn spawn(settings: &Settings, autostart: bool, on_exit: OnExit) -> Result<Supervisor> {
        let exe = std::env::current_exe().map_err(Error::io("find own executable", "jobmgr"))?;
        let (tx, rx) = unbounded();
        let pid = Arc::new(AtomicU32::new(0));
        let mut lp = Loop {
            exe,
            on_exit,
            settings: settings.clone(),
            pid: pid.clone(),
            child: None,
            want: autostart,
            start_after_exit: false,
            backoff: BACKOFF_START,
            next_try: Instant::now(),
        };
        if autostart && lock_held(&settings.db) {
            log::info!("a worker is already running on this database; not starting one");
            lp.want = false;
        }
        let thread = std::thread::Builder::new()
            .name("supervisor".into())
            .spawn(move || lp.run(rx))
            .map_err(Error::io("spawn supervisor", &settings.db))?;
        Ok(Supervisor {
            tx,
            pid,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Which worker process is supervised.
    pub fn child_pid(&self) -> ChildPid {
        ChildPid(self.pid.clone())
    }

    /// Asks for a worker to be started (now, unless one is running).
    pub fn start(&self) {
        let _ = self.tx.send(Cmd::Start);
    }

    /// Notes that the worker was asked to stop: do not restart it.
    pub fn stop_requested(&self) {
        let _ = self.tx.send(Cmd::StopRequested);
    }

    /// Stops the supervised worker gracefully and waits for it.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Cmd::Shutdown);
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Loop {
    fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            match rx.recv_timeout(TICK) {
                Ok(Cmd::Start) => {
                    self.want = true;
                    self.start_after_exit = self.child.is_some();
                    self.backoff = BACKOFF_START;
                    self.next_try = Instant::now();
                }
                Ok(Cmd::StopRequested) => {
                    self.want = false;
                    self.start_after_exit = false;
                }
                Ok(Cmd::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.terminate();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.reap();
            if self.child.is_none() && self.want && Instant::now() >= self.next_try {
                self.launch();
            }
        }
    }

    fn reap(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                let pid = child.id();
                self.child = None;
                self.pid.store(0, Ordering::Relaxed);
                if self.start_after_exit {
                    log::info!("worker exited ({status}); starting a new one as asked");
                    self.start_after_exit = false;
                    self.next_try = Instant::now();
                } else if status.success() {
                    log::info!("worker exited after a stop request; not restarting it");
                    self.want = false;
                } else {
                    log::warn!(
                        "worker exited unexpectedly ({status}); restarting in {:?}",
                        self.backoff
                    );
                    (self.on_exit)(pid);
                    self.next_try = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!("check worker process: {e}"),
        }
    }

    fn launch(&mut self) {
        if lock_held(&self.settings.db) {
            // Another worker (perhaps started by hand) holds the database.
            self.next_try = Instant::now() + Duration::from_secs(1);
            return;
        }
        let s = &self.settings;
        let mut cmd = Command::new(&self.exe);
        if let Some(config) = &s.config {
            cmd.arg("--config").arg(config);
        }
        let spawned = cmd
            .arg("--db")
            .arg(&s.db)
            .arg("--heartbeat-ms")
            .arg(s.heartbeat_ms.to_string())
            .arg("--stale-after-ms")
            .arg(s.stale_after_ms.to_string())
            .arg("--drain-timeout")
            .arg(s.drain_timeout_secs.to_string())
            .arg("worker")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => {
                log::info!("started worker process {}", child.id());
                self.pid.store(child.id(), Ordering::Relaxed);
                self.child = Some(child);
            }
            Err(e) => {
                log::error!("start worker {}: {e}", self.exe.display());
                self.next_try = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        log::info!("stopping worker process {}", child.id());
        send_sigterm(child.id());
        let limit = Duration::from_secs_f64(self.settings.drain_timeout_secs) + EXIT_GRACE;
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    log::info!("worker process exited ({status})");
                    break;
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(TICK),
                _ => {
                    log::warn!("worker did not exit within {limit:?}; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        self.pid.store(0, Ordering::Relaxed);
    }
}

/// Whether some process holds the worker lock of `db`.
pub fn lock_held(db: &Path) -> bool {
    let path = lock_path(db);
    // 0600 like the worker's own open of it (see `runner::acquire_lock`).
    let file: File = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(f) => f,
        Err(_) => return false,
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

/// Sends SIGTERM to our own child process (the supervised worker, or the
/// bench's `serve` child).
#[allow(unsafe_code)]
pub(crate) fn send_sigterm(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // `pid` is a child we spawned and have not yet reaped, so it cannot
    // have been reused by another process.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    if rc != 0 {
        log::warn!("signal worker {pid}: {}", std::io::Error::last_os_error());
    }
}

//! Child processes that never outlive the process that started them.
//!
//! Every process is started in a process group of its own (a Ctrl-C in the terminal
//! reaches only its parent, which then stops it in order) and with a tiny `sh`
//! watchdog beside it. The watchdog blocks reading a pipe whose write end only the
//! parent holds: when the parent exits, however it exits (a test binary, whose statics
//! are never dropped, or a launcher killed with SIGKILL), the pipe closes, the watchdog
//! sends the stop signal, waits for the process to go and removes its folder if asked.
//! A clean [`Process::stop`] disarms the watchdog first and does the same itself.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, BufRead as _, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rustix::process::{Pid, Signal};
use tokio::sync::watch;

/// Receives one line of a process's output (stdout and stderr alike), without its newline.
pub type LineFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Where a process's stdout and stderr go.
#[derive(Clone)]
pub enum LogSink {
    /// Appended to this file (created if missing); the process writes it directly.
    File(PathBuf),
    /// Read line by line on threads of our own and handed to the function.
    Lines(LineFn),
}

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Lines(_) => f.write_str("Lines(..)"),
        }
    }
}

/// The signal that asks a process to shut down cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT: Postgres's "fast shutdown".
    Interrupt,
    /// SIGTERM: what NATS and our services expect.
    Terminate,
}

impl StopSignal {
    fn signal(self) -> Signal {
        match self {
            Self::Interrupt => Signal::INT,
            Self::Terminate => Signal::TERM,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "INT",
            Self::Terminate => "TERM",
        }
    }
}

/// A system user to run a process as (Postgres refuses to run as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// Looks a user up in `/etc/passwd`; `None` when there is no such user.
    pub fn of_user(name: &str) -> anyhow::Result<Option<Owner>> {
        let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
        Ok(parse_passwd(&passwd, name))
    }

    /// Gives `path` (not its contents) to this owner.
    pub fn chown(&self, path: &Path) -> anyhow::Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .with_context(|| format!("giving {} to uid {}", path.display(), self.uid))
    }
}

fn parse_passwd(passwd: &str, name: &str) -> Option<Owner> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(Owner { uid, gid })
    })
}

/// How to run a [`Process`].
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// A short name for messages (`postgres`, `nats`, `user` ...).
    pub name: String,
    pub log: LogSink,
    pub stop_signal: StopSignal,
    /// Run as this user instead of ours.
    pub run_as: Option<Owner>,
    /// A folder deleted once the process has been stopped, by [`Process::stop`] or by
    /// the watchdog when we exit. A process that dies on its own keeps it, for post-mortems.
    pub remove_after: Option<PathBuf>,
}

impl ProcessOptions {
    pub fn new(name: impl Into<String>, log: LogSink) -> Self {
        Self {
            name: name.into(),
            log,
            stop_signal: StopSignal::Terminate,
            run_as: None,
            remove_after: None,
        }
    }
}

/// How many lines of output a [`LogSink::Lines`] process keeps for error messages.
const TAIL_LINES: usize = 200;

enum Tail {
    File(PathBuf),
    Ring(Arc<Mutex<VecDeque<String>>>),
}

/// A running child process; see the module docs for how it is kept from outliving us.
pub struct Process {
    name: String,
    pid: Pid,
    stop_signal: StopSignal,
    remove_after: Option<PathBuf>,
    exit: watch::Receiver<Option<ExitStatus>>,
    /// Shared with the thread that waits for the process, which disarms it when the
    /// process dies on its own (so it never signals a reused pid).
    watchdog: Arc<Mutex<Option<Child>>>,
    /// The write end of the watchdog's stdin. Held here and nowhere else: dropping the
    /// `Process` (or exiting) closes it, which is the watchdog's cue.
    _lifeline: ChildStdin,
    tail: Tail,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid.as_raw_nonzero())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// The watchdog: `$1` stop signal, `$2` pid (also its process group), `$3` folder or "".
/// After 30 s of waiting the whole process group gets SIGKILL. Once we are gone the
/// process is nobody's child, and an init that does not reap leaves it a zombie,
/// which `kill -0` still finds: /proc tells (on Linux) when it is one.
const WATCHDOG: &str = r#"
read _lifeline
if kill -s "$1" "$2" 2>/dev/null; then
  n=0
  while kill -0 "$2" 2>/dev/null; do
    case "$(cat "/proc/$2/stat" 2>/dev/null)" in *") Z "*) break ;; esac
    n=$((n + 1))
    if [ "$n" -gt 300 ]; then kill -s KILL -- "-$2" 2>/dev/null; break; fi
    sleep 0.1
  done
fi
if [ -n "$3" ]; then rm -rf -- "$3"; fi
"#;

impl Process {
    /// Starts `command` (its program, arguments, environment and working directory are
    /// used as given; stdin, stdout, stderr, process group and user are set here).
    pub fn spawn(mut command: Command, options: ProcessOptions) -> anyhow::Result<Process> {
        let name = options.name.clone();
        command.stdin(Stdio::null()).process_group(0);
        if let Some(owner) = options.run_as {
            command.uid(owner.uid).gid(owner.gid);
        }
        let tail = match &options.log {
            LogSink::File(path) => {
                let file = open_append(path)?;
                command.stdout(file.try_clone()?).stderr(file);
                Tail::File(path.clone())
            }
            LogSink::Lines(_) => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
                Tail::Ring(Arc::new(Mutex::new(VecDeque::new())))
            }
        };
        let mut child = command.spawn().with_context(|| {
            format!(
                "starting {name} ({})",
                command.get_program().to_string_lossy()
            )
        })?;
        // Every forwarding thread holds a clone of `forwarded`; when all have ended the
        // channel disconnects, which tells the waiting thread the output is complete.
        let (forwarded, output_done) = std::sync::mpsc::channel::<()>();
        if let (LogSink::Lines(sink), Tail::Ring(ring)) = (&options.log, &tail) {
            if let Some(out) = child.stdout.take() {
                forward_lines(&name, out, sink.clone(), ring.clone(), forwarded.clone());
            }
            if let Some(err) = child.stderr.take() {
                forward_lines(&name, err, sink.clone(), ring.clone(), forwarded.clone());
            }
        }
        drop(forwarded);
        let pid = Pid::from_child(&child);
        let (watchdog, lifeline) = match start_watchdog(pid, &options) {
            Ok(started) => started,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let watchdog = Arc::new(Mutex::new(Some(watchdog)));
        let (exit_tx, exit) = watch::channel(None);
        let disarm = watchdog.clone();
        std::thread::Builder::new()
            .name(format!("wait-{name}"))
            .spawn(move || {
                // `wait` on our own child can only fail if someone else reaped it.
                let status = child.wait().unwrap_or_default();
                disarm_watchdog(&disarm);
                // Let its last words reach the log before anyone hears it died (bounded:
                // a grandchild may hold the pipes open).
                let _ = output_done.recv_timeout(Duration::from_millis(500));
                exit_tx.send_replace(Some(status));
            })
            .context("starting a thread to wait for the process")?;
        Ok(Process {
            name,
            pid,
            stop_signal: options.stop_signal,
            remove_after: options.remove_after,
            exit,
            watchdog,
            _lifeline: lifeline,
            tail,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// The exit status, once the process has exited.
    pub fn status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Resolves when the process has exited. Owns what it needs, so it can be moved
    /// into a task that reports deaths.
    pub fn exited(&self) -> impl Future<Output = ExitStatus> + Send + 'static {
        let mut exit = self.exit.clone();
        async move {
            match exit.wait_for(Option::is_some).await {
                Ok(status) => status.unwrap_or_default(),
                // The waiting thread always sends before it ends; this is unreachable.
                Err(_) => ExitStatus::default(),
            }
        }
    }

    /// Stops the process: its stop signal, up to `grace` to exit, then SIGKILL to its
    /// whole process group. Then removes `remove_after`. Safe to call more than once.
    pub async fn stop(&self, grace: Duration) -> ExitStatus {
        disarm_watchdog(&self.watchdog);
        if self.status().is_none() {
            let _ = rustix::process::kill_process(self.pid, self.stop_signal.signal());
            if tokio::time::timeout(grace, self.exited()).await.is_err() {
                tracing::warn!(process = %self.name, ?grace, "did not stop in time, killing it");
                let _ = rustix::process::kill_process_group(self.pid, Signal::KILL);
            }
        }
        let status = self.exited().await;
        self.remove_folder();
        status
    }

    /// Kills the process at once, as a crash would (SIGKILL to its whole process
    /// group: no chance to finish requests or say goodbye), and waits for it to go.
    /// Then removes `remove_after`, as [`Process::stop`] does. Safe to call more than once.
    pub async fn kill(&self) -> ExitStatus {
        disarm_watchdog(&self.watchdog);
        if self.status().is_none() {
            let _ = rustix::process::kill_process_group(self.pid, Signal::KILL);
        }
        let status = self.exited().await;
        self.remove_folder();
        status
    }

    fn remove_folder(&self) {
        let removed = self
            .remove_after
            .as_deref()
            .map(|dir| (dir, std::fs::remove_dir_all(dir)));
        match removed {
            Some((dir, Err(e))) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove");
            }
            _ => {}
        }
    }

    /// The last `lines` lines of the process's output, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let all: Vec<String> = match &self.tail {
            Tail::File(path) => match std::fs::read(path) {
                Ok(bytes) => String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_owned)
                    .collect(),
                Err(e) => return format!("(could not read {}: {e})", path.display()),
            },
            Tail::Ring(ring) => lock(ring).iter().cloned().collect(),
        };
        let start = all.len().saturating_sub(lines);
        all[start..].join("\n")
    }

    /// Where the full log is, for error messages.
    pub fn log_location(&self) -> String {
        match &self.tail {
            Tail::File(path) => path.display().to_string(),
            Tail::Ring(_) => "its output above".to_owned(),
        }
    }
}

fn start_watchdog(pid: Pid, options: &ProcessOptions) -> anyhow::Result<(Child, ChildStdin)> {
    let folder = options.remove_after.as_deref().unwrap_or(Path::new(""));
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("shop-watchdog")
        .arg(options.stop_signal.name())
        .arg(pid.as_raw_nonzero().to_string())
        .arg(folder)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .process_group(0)
        .spawn()
        .context("starting the watchdog (/bin/sh)")?;
    let lifeline = child.stdin.take().context("the watchdog has no stdin")?;
    Ok((child, lifeline))
}

/// Letting go of a process hands it to its watchdog, which stops it and removes its
/// folder once the lifeline (dropped right after this) closes.
impl Drop for Process {
    fn drop(&mut self) {
        // Taken out first, or the thread that waits for the process would disarm the
        // watchdog as soon as the process dies, before the watchdog removes its folder.
        let Some(mut watchdog) = lock(&self.watchdog).take() else {
            return;
        };
        // Reaped on a thread of its own; if there is none to be had, the watchdog stays
        // a zombie until we exit, which harms nothing.
        let _ = std::thread::Builder::new()
            .name(format!("reap-{}", self.name))
            .spawn(move || watchdog.wait());
    }
}

fn disarm_watchdog(watchdog: &Mutex<Option<Child>>) {
    if let Some(mut child) = lock(watchdog).take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn forward_lines(
    name: &str,
    stream: impl Read + Send + 'static,
    sink: LineFn,
    ring: Arc<Mutex<VecDeque<String>>>,
    done: std::sync::mpsc::Sender<()>,
) {
    let spawned = std::thread::Builder::new()
        .name(format!("log-{name}"))
        .spawn(move || {
            let _done = done;
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']);
                {
                    let mut ring = lock(&ring);
                    if ring.len() == TAIL_LINES {
                        ring.pop_front();
                    }
                    ring.push_back(line.to_owned());
                }
                sink(line);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(process = name, error = %e, "cannot forward the output");
    }
}

fn open_append(path: &Path) -> anyhow::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a process with this pid exists and (where `/proc` can tell) its command
/// line mentions `needle`, so a pid file left behind never gets a stranger signalled.
pub fn is_running(pid: u32, needle: &str) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    if rustix::process::test_kill_process(raw).is_err() {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains(needle),
        // No /proc (macOS): the pid is alive, trust the pid file.
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Stops a process we did not start (found through a pid file): `signal`, then waits
/// up to `timeout` for it to go. Returns whether there was anything to stop.
pub async fn stop_pid(
    pid: u32,
    needle: &str,
    signal: StopSignal,
    timeout: Duration,
) -> anyhow::Result<bool> {
    if !is_running(pid, needle) {
        return Ok(false);
    }
    let raw = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .context("invalid pid")?;
    rustix::process::kill_process(raw, signal.signal())
        .with_context(|| format!("signalling {needle} (pid {pid})"))?;
    let deadline = Instant::now() + timeout;
    while is_running(pid, needle) {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{needle} (pid {pid}) is still running {timeout:?} after SIG{}",
                signal.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_give_uid_and_gid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            parse_passwd(passwd, "postgres"),
            Some(Owner { uid: 101, gid: 104 })
        );
        assert_eq!(parse_passwd(passwd, "nobody"), None);
    }
}

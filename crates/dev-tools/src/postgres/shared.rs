//! One private cluster shared by many processes: the integration tests, which nextest runs
//! one process per test. The first process that needs it starts it; the others connect; a
//! detached watchdog stops it once no process has used it for a while.
//!
//! Files in `dir`, next to the cluster's own (`data/`, `sock/`, `postgres.log`):
//! - `start.lock`, held exclusively while a process checks or starts the server (and while
//!   the watchdog decides to stop it), so concurrent processes start it once;
//! - `server`: `POSTMASTER_PID PORT WATCHDOG_PID`;
//! - `lease`: every process using the server holds a shared lock on it until it exits. A lock
//!   goes with its process however that ends (even SIGKILL), which a timestamp cannot tell.
//!
//! The watchdog is a `sh` loop in its own process group (it outlives the test run, and
//! nextest's signals to a test's process group). Every 2 s, under `start.lock`, it tries the
//! lease exclusively; once it could for `idle` in a row, it stops the postmaster with SIGINT
//! (fast shutdown) and exits. Unlike [`PrivatePostgres`](super::PrivatePostgres), the
//! postmaster has no parent-death signal: it must outlive the process that started it.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::server_log::{log_len, start_failed};
use super::{Cluster, POLL, STALE_RETRY, is_live, wait_ready};
use crate::data_dir::{fallback_dir, reachable_by_postgres};

/// Needs `flock(1)` (util-linux, on every Debian-like system) and a POSIX `sh`.
const WATCHDOG: &str = r#"
dir=$1 pid=$2 idle=$3 quiet=0
# Not a zombie: the process that started the postmaster reaps it only when it exits.
alive() {
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    case ${s##*) } in Z* | X*) return 1 ;; esac
}
exec 8>>"$dir/start.lock"
while alive "$pid"; do
    sleep 2
    flock -x 8
    if flock -n -x "$dir/lease" true; then quiet=$((quiet + 2)); else quiet=0; fi
    if [ "$quiet" -ge "$idle" ]; then
        kill -INT "$pid"
        i=0
        while alive "$pid" && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
        break
    fi
    flock -u 8
done
flock -x 8
read -r p _ < "$dir/server" && [ "$p" = "$pid" ] && rm -f "$dir/server"
"#;

/// A process's hold on the shared server: it stays up at least while this lives.
#[derive(Debug)]
pub struct Lease {
    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth).
    pub url: String,
    _held: File,
}

/// `preferred`, unless PostgreSQL (as the `postgres` user when we are root) cannot reach it:
/// then a folder under /var/tmp named after it.
pub fn dir_for(preferred: &Path) -> PathBuf {
    let parent = preferred.parent().unwrap_or(preferred);
    if reachable_by_postgres(parent) { preferred.to_path_buf() } else { fallback_dir("r2-broker-test-pg", preferred) }
}

/// Joins the server of the cluster in `dir`, starting it (and `initdb` on first use) when it
/// is not running. Blocks, up to a few seconds when it starts the server.
pub fn acquire(dir: &Path, idle: Duration) -> anyhow::Result<Lease> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let open = |name: &str| OpenOptions::new().create(true).append(true).open(dir.join(name));
    let start_lock = open("start.lock")?;
    start_lock.lock()?;
    let port = match running(dir, idle)? {
        Some(port) => port,
        None => start(dir, idle)?,
    };
    let held = open("lease")?;
    held.lock_shared()?; // before `start.lock` goes: the watchdog sees us from now on
    drop(start_lock);
    Ok(Lease { url: format!("postgres://postgres@127.0.0.1:{port}/postgres"), _held: held })
}

/// The port of a server that is up, after making sure its watchdog still runs.
fn running(dir: &Path, idle: Duration) -> anyhow::Result<Option<u16>> {
    let text = fs::read_to_string(dir.join("server")).unwrap_or_default();
    let fields: Vec<u32> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    let &[pid, port, watchdog] = fields.as_slice() else { return Ok(None) };
    // postmaster.pid: line 1 the PID, line 8 the status.
    let status = fs::read_to_string(dir.join("data/postmaster.pid")).unwrap_or_default();
    let lines: Vec<&str> = status.lines().map(str::trim).collect();
    let ready = lines.first() == Some(&pid.to_string().as_str()) && lines.get(7) == Some(&"ready");
    let Ok(port) = u16::try_from(port) else { return Ok(None) };
    if !(is_live(pid) && ready) {
        return Ok(None);
    }
    if !is_live(watchdog) {
        let watchdog = spawn_watchdog(dir, pid, idle)?;
        fs::write(dir.join("server"), format!("{pid} {port} {watchdog}\n"))?;
    }
    Ok(Some(port))
}

fn start(dir: &Path, idle: Duration) -> anyhow::Result<u16> {
    let cluster = Cluster::open(dir)?;
    let t0 = Instant::now();
    let (pid, port) = loop {
        cluster.clear_stale()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let from = log_len(&cluster.log);
        let mut child = cluster.server_command(port)?.spawn().context("starting postgres")?;
        match wait_ready(&mut child, &cluster.data) {
            // Not waited for: the postmaster is reparented when this process exits.
            Ok(()) => break (child.id(), port),
            // A stopped server's processes may still be going away, or the port was taken.
            Err(None) if t0.elapsed() < STALE_RETRY => std::thread::sleep(POLL * 5),
            Err(e) => return Err(start_failed(&mut child, e, &cluster.log, from)),
        }
    };
    let watchdog = spawn_watchdog(&cluster.dir, pid, idle)?;
    fs::write(cluster.dir.join("server"), format!("{pid} {port} {watchdog}\n"))?;
    tracing::info!(pid, port, elapsed = ?t0.elapsed(), dir = %cluster.dir.display(), "shared PostgreSQL ready");
    Ok(port)
}

fn spawn_watchdog(dir: &Path, postmaster: u32, idle: Duration) -> anyhow::Result<u32> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", WATCHDOG, "r2b-pg-watchdog"]).arg(dir).arg(postmaster.to_string());
    cmd.arg(idle.as_secs().max(1).to_string());
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).current_dir("/");
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(cmd.spawn().context("starting the watchdog of the shared PostgreSQL (sh, flock)")?.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two leases share one server; it stops once both are gone (idle: 1 s).
    #[test]
    fn shared_until_idle() {
        let dir = PathBuf::from(format!("/tmp/r2b-pg-shared-{}", std::process::id()));
        let (a, b) = (acquire(&dir, Duration::from_secs(1)).unwrap(), acquire(&dir, Duration::from_secs(1)).unwrap());
        assert_eq!(a.url, b.url);
        let pid: u32 = fs::read_to_string(dir.join("server")).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(is_live(pid));
        std::thread::sleep(Duration::from_secs(3));
        assert!(is_live(pid), "stopped while leased");
        drop((a, b));
        let t0 = Instant::now();
        while dir.join("server").exists() {
            assert!(t0.elapsed() < Duration::from_secs(15), "not stopped when idle");
            std::thread::sleep(POLL * 10);
        }
        let lease = acquire(&dir, Duration::from_secs(1)).unwrap(); // starts again
        assert_ne!(fs::read_to_string(dir.join("server")).unwrap().split(' ').next(), Some(&*pid.to_string()));
        drop(lease);
        while dir.join("server").exists() {
            std::thread::sleep(POLL * 10);
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

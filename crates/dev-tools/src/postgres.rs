//! A private PostgreSQL cluster for `r2-broker dev` and hermetic tests ([`shared`]: one
//! cluster for many test processes).
//!
//! Runs the machine's own `initdb`/`postgres` (no download) on a folder of ours: trust auth,
//! 127.0.0.1 on a free port, a private socket folder, `fsync=off`. Layout of `dir`:
//! `data/` (the cluster), `sock/` (unix socket), `postgres.log`.
//!
//! PostgreSQL refuses to run as root; as root we run it as the `postgres` system user, which
//! must be able to enter every parent folder of `dir`. The postmaster is our child with
//! `PR_SET_PDEATHSIG = SIGINT`, so even a SIGKILLed r2-broker leaves no server behind (SIGINT
//! is PostgreSQL's "fast" shutdown: clean, no crash recovery next time).

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};

mod options;
mod server_log;
pub mod shared;
mod sys;
pub use options::ServerOptions;
use server_log::{log_len, log_tail, start_failed};
use sys::{is_live, is_root, lookup_user, remove_if_exists, set_parent_death_signal, signal};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// After a killed run, the old postmaster may linger as a zombie and its backends may still be
/// attached to the old shared memory (postgres then refuses to start): retry for this long.
const STALE_RETRY: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub struct PrivatePostgres {
    child: Option<Child>,
    /// Dropping it ends the thread that spawned the postmaster (see [`Cluster::spawn`]).
    keeper: Option<mpsc::Sender<()>>,
    pid: u32,
    port: u16,
    database: String,
    data: PathBuf,
    sock: PathBuf,
}

impl PrivatePostgres {
    /// Starts the cluster in `dir` (running `initdb` on first use), then creates the database
    /// `database` if missing. Recovers from the stale state a killed run leaves.
    pub async fn start(dir: &Path, database: &str) -> anyhow::Result<Self> {
        Self::start_with(dir, database, ServerOptions::default()).await
    }

    /// [`start`](Self::start) with extra settings, pg_hba lines and files (for this start only).
    pub async fn start_with(dir: &Path, database: &str, options: ServerOptions) -> anyhow::Result<Self> {
        let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        ensure!(
            (1..=63).contains(&database.len()) && database.bytes().all(ok),
            "invalid database name {database:?}: use up to 63 of A-Z a-z 0-9 _ -"
        );
        let (dir, database) = (dir.to_path_buf(), database.to_owned());
        let pg = tokio::task::spawn_blocking(move || {
            let mut cluster = Cluster::open(&dir)?;
            cluster.extra_args = cluster.apply(&options)?;
            cluster.start(database)
        });
        let pg = pg.await??;
        pg.create_database().await?; // on error `pg` is dropped, which stops the server
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:PORT/<database>` (trust auth: no password).
    pub fn database_url(&self) -> String {
        let (port, db) = (self.port, &self.database);
        format!("postgres://postgres@127.0.0.1:{port}/{db}")
    }

    /// The postmaster's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Fast shutdown (SIGINT: disconnect clients, checkpoint, exit), waiting up to 10 s, then
    /// SIGKILL. Blocks: from async code prefer `spawn_blocking`.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // Not reaped until we wait on it, so the PID cannot have been reused.
        if child.try_wait()?.is_none() {
            signal(self.pid, libc::SIGINT);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            match child.try_wait()? {
                Some(status) => break status,
                None if Instant::now() > deadline => {
                    child.kill()?;
                    child.wait()?;
                    bail!("PostgreSQL did not stop within {STOP_TIMEOUT:?}: killed");
                }
                None => std::thread::sleep(POLL),
            }
        };
        self.keeper.take();
        tracing::info!(data = %self.data.display(), "private PostgreSQL stopped");
        ensure!(status.success(), "PostgreSQL exited with {status}");
        Ok(())
    }

    async fn create_database(&self) -> anyhow::Result<()> {
        // Over the unix socket: pg_hba lines of a start may refuse plain TCP (hostssl).
        let conninfo = format!("host={} port={} user=postgres", self.sock.display(), self.port);
        let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
            .await
            .context("connecting to the private PostgreSQL")?;
        let conn = tokio::spawn(conn);
        let sql = "SELECT 1 FROM pg_database WHERE datname = $1";
        if client.query_opt(sql, &[&self.database]).await?.is_none() {
            // The name is validated (no `"`); quoting keeps `-` and upper case.
            let created = client.batch_execute(&format!("CREATE DATABASE \"{}\"", self.database)).await;
            if let Err(e) = created {
                use tokio_postgres::error::SqlState;
                ensure!(e.code() == Some(&SqlState::DUPLICATE_DATABASE), e); // lost a race: fine
            }
        }
        drop(client);
        let _ = conn.await;
        Ok(())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("stopping the private PostgreSQL: {e:#}");
        }
    }
}

/// The cluster's folders and how to run its binaries.
struct Cluster {
    dir: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    /// The `postgres` user (uid, gid) when we are root: PostgreSQL refuses to run as root.
    run_as: Option<(u32, u32)>,
    /// More postmaster arguments ([`ServerOptions`]).
    extra_args: Vec<std::ffi::OsString>,
}

impl Cluster {
    fn open(dir: &Path) -> anyhow::Result<Self> {
        let run_as = if is_root() {
            Some(lookup_user("postgres")?.context(
                "PostgreSQL refuses to run as root and there is no `postgres` user to run it as: \
                 install PostgreSQL (`apt-get install postgresql` creates it), run as another \
                 user, or set DATABASE_URL",
            )?)
        } else {
            None
        };
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?; // postgres gets absolute paths; /proc/PID/cwd compares
        if let Some(user) = run_as {
            check_traversable(&dir, user)?;
        }
        let data = dir.join("data");
        let version = fs::read_to_string(data.join("PG_VERSION")).ok();
        let bin = find_bin_dir(version.as_deref().map(str::trim))?;
        // A unix socket path is limited to 107 bytes: deep folders fall back to /tmp.
        let mut sock = dir.join("sock");
        if sock.as_os_str().len() > 90 {
            sock = std::env::temp_dir().join(format!("r2-broker-pg-{}", fs::metadata(&dir)?.ino()));
        }
        let log = dir.join("postgres.log");
        let cluster = Self { dir, data, sock, log, bin, run_as, extra_args: Vec::new() };
        if version.is_none() {
            cluster.initdb()?;
        }
        cluster.private_dir(&cluster.sock)?;
        Ok(cluster)
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let t0 = Instant::now();
        ensure!(
            fs::read_dir(&self.data).map_or(true, |mut d| d.next().is_none()),
            "{} exists but holds no cluster (an interrupted initdb?): remove it",
            self.data.display()
        );
        self.private_dir(&self.data)?;
        let from = log_len(&self.log);
        let mut cmd = self.command("initdb")?;
        // --no-locale: independent of which locales the machine has generated.
        cmd.arg("-D").arg(&self.data).args(["--auth=trust", "-U", "postgres", "-E", "UTF8"]);
        cmd.args(["--no-locale", "--no-sync"]);
        let status = cmd.status().context("running initdb")?;
        if !status.success() {
            let _ = fs::remove_dir_all(&self.data); // else the next start would refuse it
            bail!("initdb failed ({status}); {}", log_tail(&self.log, from));
        }
        tracing::info!(elapsed = ?t0.elapsed(), data = %self.data.display(), "initdb done");
        Ok(())
    }

    fn start(self, database: String) -> anyhow::Result<PrivatePostgres> {
        let t0 = Instant::now();
        loop {
            self.clear_stale()?;
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let from = log_len(&self.log);
            let (mut child, keeper) = self.spawn(port)?;
            match wait_ready(&mut child, &self.data) {
                Ok(()) => {
                    let pid = child.id();
                    let log = self.log.display();
                    tracing::info!(pid, port, elapsed = ?t0.elapsed(), %log, "PostgreSQL ready");
                    let (child, keeper, data, sock) = (Some(child), Some(keeper), self.data, self.sock);
                    return Ok(PrivatePostgres { child, keeper, pid, port, database, data, sock });
                }
                // Exited early: a killed run's processes may still be going away (or the port
                // was taken meanwhile). Retry a little, then report.
                Err(None) if t0.elapsed() < STALE_RETRY => std::thread::sleep(POLL * 5),
                Err(e) => return Err(start_failed(&mut child, e, &self.log, from)),
            }
        }
    }

    /// PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process:
    /// the postmaster is spawned from a thread of its own that lives until the handle goes.
    fn spawn(&self, port: u16) -> anyhow::Result<(Child, mpsc::Sender<()>)> {
        let mut cmd = self.server_command(port)?;
        set_parent_death_signal(&mut cmd);
        let (child_tx, child_rx) = mpsc::channel();
        let (keeper, kept) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("postgres-parent".into());
        thread.spawn(move || {
            let _ = child_tx.send(cmd.spawn());
            drop(cmd); // closes our copies of the log file descriptors
            let _ = kept.recv(); // returns when the handle drops the sender
        })?;
        let child = child_rx.recv()?.context("starting postgres")?;
        Ok((child, keeper))
    }

    /// The postmaster on 127.0.0.1:`port`. In its own process group: a Ctrl-C in the terminal
    /// reaches r2-broker only, which then stops PostgreSQL in order instead of both racing.
    fn server_command(&self, port: u16) -> io::Result<Command> {
        let mut cmd = self.command("postgres")?;
        cmd.arg("-D").arg(&self.data).args(["-c", "listen_addresses=127.0.0.1", "-c"]);
        cmd.arg(format!("port={port}")).arg("-c").arg(format!("unix_socket_directories={}", self.sock.display()));
        cmd.args(["-c", "fsync=off"]).args(&self.extra_args);
        cmd.process_group(0);
        Ok(cmd)
    }

    /// A killed run leaves `postmaster.pid` (and a socket lock file) behind; postgres refuses
    /// to start while the PID in it is alive, whoever it belongs to now.
    fn clear_stale(&self) -> anyhow::Result<()> {
        let pid_file = self.data.join("postmaster.pid");
        let text = fs::read_to_string(&pid_file).unwrap_or_default();
        let pid = text.lines().next().and_then(|l| l.trim().parse::<u32>().ok());
        let cwd = |pid| fs::read_link(format!("/proc/{pid}/cwd")).ok();
        if let Some(pid) = pid.filter(|&p| is_live(p) && cwd(p).as_ref() == Some(&self.data)) {
            // A postmaster of this very cluster outlived its owner: stop it cleanly.
            tracing::warn!(pid, "stopping a PostgreSQL left running on {}", self.data.display());
            signal(pid, libc::SIGINT);
            let t0 = Instant::now();
            while is_live(pid) {
                ensure!(t0.elapsed() < STOP_TIMEOUT * 2, "cannot stop PostgreSQL (PID {pid})");
                if t0.elapsed() > STOP_TIMEOUT {
                    signal(pid, libc::SIGKILL);
                }
                std::thread::sleep(POLL);
            }
        }
        remove_if_exists(&pid_file)?;
        for entry in fs::read_dir(&self.sock)? {
            let path = entry?.path();
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".s.PGSQL.")) {
                remove_if_exists(&path)?;
            }
        }
        Ok(())
    }

    /// Output to the log, a clean environment, the `postgres` user when we are root.
    fn command(&self, program: &str) -> io::Result<Command> {
        let log = OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = Command::new(self.bin.join(program));
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let path = std::env::var_os("PATH").unwrap_or_default();
        cmd.env_clear().env("PATH", path).env("LANG", "C");
        cmd.current_dir(&self.dir); // our own cwd may be closed to `postgres`
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        Ok(cmd)
    }

    /// A 0700 folder owned by whoever runs postgres (initdb and the socket folder want that).
    fn private_dir(&self, path: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }
}

/// `Err(None)`: the postmaster exited; `Err(Some(e))`: timeout or I/O error.
fn wait_ready(child: &mut Child, data: &Path) -> Result<(), Option<anyhow::Error>> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let pid = child.id().to_string();
    loop {
        if child.try_wait().map_err(|e| Some(e.into()))?.is_some() {
            return Err(None);
        }
        // postmaster.pid: line 1 the PID, line 8 the status ("starting", "ready", ...).
        let text = fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        if lines.first() == Some(&pid.as_str()) && lines.get(7) == Some(&"ready") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Some(anyhow!("not ready after {READY_TIMEOUT:?}")));
        }
        std::thread::sleep(POLL);
    }
}

/// Server binaries: the major version `want` (the cluster's PG_VERSION) if installed, then
/// PATH, then the highest /usr/lib/postgresql/N/bin (Debian puts no `initdb` in PATH).
fn find_bin_dir(want: Option<&str>) -> anyhow::Result<PathBuf> {
    let exe = |p: PathBuf| fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0);
    let has_both = |d: &PathBuf| exe(d.join("initdb")) && exe(d.join("postgres"));
    let versions = fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten();
    let mut debian: Vec<(u32, PathBuf)> =
        versions.filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin")))).collect();
    debian.sort();
    let wanted = debian.iter().filter(|(n, _)| Some(&*n.to_string()) == want);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let wanted = wanted.map(|(_, d)| d.clone()).chain(std::env::split_paths(&path));
    let found = wanted.chain(debian.iter().rev().map(|(_, d)| d.clone())).find(has_both);
    found.context(
        "PostgreSQL server binaries (initdb, postgres) not found in PATH or \
         /usr/lib/postgresql/*/bin: install them (`apt-get install postgresql`) or set \
         DATABASE_URL to an existing database",
    )
}

/// Spawned processes get the user's primary group only (std drops supplementary groups), so
/// owner/group/other execute bits tell whether `postgres` can get through (ACLs aside).
fn check_traversable(dir: &Path, (uid, gid): (u32, u32)) -> anyhow::Result<()> {
    for folder in dir.ancestors() {
        let m = fs::metadata(folder)?;
        let bit = if m.uid() == uid {
            0o100
        } else if m.gid() == gid {
            0o010
        } else {
            0o001
        };
        ensure!(
            m.mode() & bit != 0,
            "PostgreSQL runs as the `postgres` user (it refuses root), which cannot enter {} \
             (mode {:o}), a parent of {}: use a folder elsewhere (e.g. under /var/tmp), \
             `chmod o+x {0}`, or set DATABASE_URL",
            folder.display(),
            m.mode() & 0o7777,
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;

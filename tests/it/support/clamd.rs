//! A private clamd per test: Debian's `clamav-daemon` with a signature database built here
//! (freshclam needs the network, and the real database takes a minute to load): the EICAR
//! test file plus whatever a test adds, each matched by its SHA-256 (`.hdb` lines
//! `hash:size:name`). It listens on 127.0.0.1 (a free port) and on a unix socket in its own
//! directory, with `StreamMaxLength` [`STREAM_MAX`]; Drop kills it and removes the directory.
//!
//! Without clamd installed, [`start`] returns `None` and the test returns early with a note;
//! under CI (`CI` set) that is a failure instead: scripts/test.sh installs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The EICAR anti-virus test file (68 bytes): every scanner flags it, nothing else is.
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// What clamd reports for [`EICAR`]: the `.hdb` name, marked as not from ClamAV's own databases.
pub const EICAR_SIGNATURE: &str = "R2Broker.Test.EICAR.UNOFFICIAL";
/// clamd's `StreamMaxLength`: a longer stream is refused.
pub const STREAM_MAX: u64 = 7 << 20;
/// How long clamd may take to answer its first PING.
const START_DEADLINE: Duration = Duration::from_secs(60);

pub struct Clamd {
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub socket: PathBuf,
    dir: PathBuf,
    child: Child,
}

/// The name clamd reports for a signature added with [`start_with`].
pub fn reported(name: &str) -> String {
    format!("{name}.UNOFFICIAL")
}

/// A clamd that knows EICAR.
pub async fn start() -> Option<Clamd> {
    start_with(&[]).await
}

/// A clamd that knows EICAR and each `(name, content)`: exactly that content is flagged as
/// `reported(name)`.
pub async fn start_with(signatures: &[(&str, &[u8])]) -> Option<Clamd> {
    let Some(binary) = binary() else {
        if std::env::var_os("CI").is_some() {
            panic!("clamd is not installed (CI is set): apt-get install clamav-daemon, as scripts/test.sh does");
        }
        eprintln!("note: clamd is not installed (apt-get install clamav-daemon); this test checks nothing here");
        return None;
    };
    let dir = std::env::temp_dir().join(format!("r2b-clamd-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let mut hdb = std::fs::File::create(dir.join("db/test.hdb")).unwrap();
    for (name, content) in [("R2Broker.Test.EICAR", EICAR)].into_iter().chain(signatures.iter().copied()) {
        writeln!(hdb, "{}:{}:{name}", hex::encode(Sha256::digest(content)), content.len()).unwrap();
    }
    drop(hdb);
    // The port is free when picked; another process may take it before clamd binds it, so
    // a clamd that exits at once gets another port.
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut clamd = spawn(&binary, &dir, port);
        if clamd.wait_ready().await {
            return Some(clamd);
        }
        let _ = clamd.child.kill();
        let _ = clamd.child.wait();
        clamd.dir = PathBuf::new(); // kept for the next attempt
    }
    let out = std::fs::read_to_string(dir.join("clamd.out")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    panic!("clamd did not start; its output:\n{out}");
}

fn binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    [PathBuf::from("/usr/sbin")].into_iter().chain(on_path).map(|d| d.join("clamd")).find(|p| p.is_file())
}

fn spawn(binary: &Path, dir: &Path, port: u16) -> Clamd {
    let socket = dir.join("clamd.sock");
    // Foreground, logs in its own directory, no `User` (it runs as whoever runs the tests
    // and drops no privileges), no bytecode (the database has none), no self-check reloads.
    let conf = format!(
        "Foreground yes\n\
         DatabaseDirectory {db}\n\
         TemporaryDirectory {dir}\n\
         LogFile {dir}/clamd.log\n\
         LogClean yes\n\
         TCPSocket {port}\n\
         TCPAddr 127.0.0.1\n\
         LocalSocket {socket}\n\
         FixStaleSocket yes\n\
         StreamMaxLength {STREAM_MAX}\n\
         Bytecode no\n\
         SelfCheck 0\n\
         MaxThreads 4\n",
        db = dir.join("db").display(),
        dir = dir.display(),
        socket = socket.display(),
    );
    std::fs::write(dir.join("clamd.conf"), conf).unwrap();
    let out = std::fs::File::create(dir.join("clamd.out")).unwrap();
    let child = Command::new(binary)
        .arg("-c")
        .arg(dir.join("clamd.conf"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start clamd");
    Clamd { addr: format!("127.0.0.1:{port}"), socket, dir: dir.to_owned(), child }
}

impl Clamd {
    /// Whether clamd answered PING on both its TCP port and its socket within the deadline;
    /// false when it exited (its port was taken).
    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if ping_tcp(&self.addr).await && ping_unix(&self.socket).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clamd did not answer PING within {START_DEADLINE:?}; its log:\n{}", self.log());
    }

    /// What clamd logged so far (one line per scanned stream: `LogClean yes`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("clamd.log")).unwrap_or_default()
    }
}

async fn ping_tcp(addr: &str) -> bool {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(conn) => pong(conn).await,
        Err(_) => false,
    }
}

async fn ping_unix(socket: &Path) -> bool {
    match tokio::net::UnixStream::connect(socket).await {
        Ok(conn) => pong(conn).await,
        Err(_) => false,
    }
}

async fn pong<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut conn: S) -> bool {
    let asked = async {
        conn.write_all(b"zPING\0").await?;
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).await?;
        std::io::Result::Ok(reply)
    };
    matches!(tokio::time::timeout(Duration::from_secs(5), asked).await, Ok(Ok(reply)) if reply == b"PONG\0")
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

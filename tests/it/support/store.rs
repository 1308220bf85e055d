//! The S3 store every test of this process uses: the dev tools' embedded s3s-fs store, which
//! checks SigV4 signatures as R2 does, on 127.0.0.1 port 0 with a key pair of its own. Each
//! test creates its own bucket in it.
//!
//! It runs on a thread of its own with its own runtime, not on the test's: several tests block
//! their runtime (running `r2-broker reap` as a subprocess, say), and a store on that
//! current-thread runtime would then never answer.

use std::path::PathBuf;
use std::sync::OnceLock;

use r2_broker_dev::store::EmbeddedStore;

pub struct TestStore {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The store, started on first use.
pub fn store() -> &'static TestStore {
    static STORE: OnceLock<TestStore> = OnceLock::new();
    STORE.get_or_init(start)
}

fn start() -> TestStore {
    let root = root();
    let access_key = format!("AK{}", &uuid::Uuid::new_v4().simple().to_string()[..18]).to_ascii_uppercase();
    let secret_key = uuid::Uuid::new_v4().simple().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let (ak, sk) = (access_key.clone(), secret_key.clone());
    std::thread::Builder::new()
        .name("test-s3-store".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let addr = "127.0.0.1:0".parse().unwrap();
                let store = EmbeddedStore::start(&root, "r2b-test", addr, &ak, &sk).await;
                let endpoint = store.as_ref().map(|s| s.endpoint.clone()).map_err(|e| format!("{e:#}"));
                let _ = tx.send(endpoint);
                // Serves until the test process exits.
                let _store = store;
                std::future::pending::<()>().await;
            });
        })
        .unwrap();
    let endpoint = rx.recv().unwrap().unwrap_or_else(|e| panic!("the test S3 store did not start: {e}"));
    TestStore { endpoint, access_key, secret_key }
}

/// `<target>/tmp/r2b-s3/<pid>`, after removing what processes that are gone left there: a
/// process cannot clean up after itself (the store lives until it exits).
fn root() -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("r2b-s3");
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let pid = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
        if pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let root = base.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&root); // a reused PID's leftovers
    root
}

//! A PostgreSQL frozen for real: the postmaster and every backend SIGSTOPped, so sockets stay
//! open and nothing answers. Every database route must answer 503 within its deadline and
//! recover after SIGCONT.

use super::*;

/// Processes stopped with SIGSTOP, continued when dropped (also when the test fails, so
/// no frozen backend outlives it).
struct Stopped(Vec<u32>);

impl Stopped {
    /// The postmaster first (it forks no backend while stopped), then all its children.
    fn postgres(postmaster: u32) -> Self {
        signal("-STOP", &[postmaster]);
        let mut pids = vec![postmaster];
        let children = children_of(postmaster);
        assert!(!children.is_empty(), "the postmaster has children (backends, checkpointer, ...)");
        signal("-STOP", &children);
        pids.extend(children);
        Self(pids)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal("-CONT", &self.0);
    }
}

/// The crate denies unsafe code, so signals go through kill(1).
fn signal(sig: &str, pids: &[u32]) {
    let status = std::process::Command::new("kill")
        .arg(sig)
        .args(pids.iter().map(u32::to_string))
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill {sig} {pids:?}");
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

/// A private cluster: the shared test cluster serves other tests and cannot be stopped.
struct PrivateCluster {
    pg: Option<r2_broker_dev::postgres::PrivatePostgres>,
    dir: PathBuf,
}

impl PrivateCluster {
    async fn start() -> Self {
        // Under /tmp: PostgreSQL runs as `postgres` when we are root and must reach it.
        let dir = std::env::temp_dir().join(format!("r2b-it-sigstop-{}", uuid::Uuid::new_v4().simple()));
        let pg = r2_broker_dev::postgres::PrivatePostgres::start(&dir, "broker").await.expect("a private PostgreSQL");
        Self { pg: Some(pg), dir }
    }

    fn pg(&self) -> &r2_broker_dev::postgres::PrivatePostgres {
        self.pg.as_ref().unwrap()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        drop(self.pg.take()); // stops the server (blocking, at most a few seconds)
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The real thing, with the default settings: PostgreSQL and every backend stopped while
/// the broker holds pooled connections to them. The figures printed are the ones for the
/// issue's note.
#[tokio::test]
async fn deadline_every_database_route_is_503_while_postgres_is_sigstopped_then_recovers() {
    let cluster = PrivateCluster::start().await;
    let url = cluster.pg().database_url();
    let app_url = url.clone();
    let tweak = Box::new(move |s: &mut Settings| s.database_url = Some(app_url));
    let mut app = TestApp::spawn_with(TestOptions { tweak: Some(tweak), ..Default::default() }).await;
    // The invariant checks read the database the app uses.
    app.db = crate::support::db::client(&url).await;
    app.database_url = url;

    let f = fixture(&app).await;
    let routes = database_routes(&f);
    wait_ready(&app).await;
    let stopped = Stopped::postgres(cluster.pg().pid());
    all_unavailable(&app, &routes, Instant::now(), "PostgreSQL SIGSTOPped, default settings").await;
    drop(stopped); // SIGCONT

    wait_ready(&app).await;
    // Statements sent before the stop may still run after SIGCONT (each is atomic): the
    // totals must match whatever was written.
    assert_nothing_half_written(&app).await;
    all_recovered(&app, &routes).await;
    assert_eq!(app.upload_status(&f.to_complete).await, "completed");
    assert_eq!(app.upload_status(&f.to_abort).await, "aborted");
    assert_nothing_half_written(&app).await;
    drop(app);
    drop(cluster);
}

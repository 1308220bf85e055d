//! The private PostgreSQL cluster, started for real (as the postgres user when root).
use super::*;

/// Under /tmp (1777): every parent is traversable by `postgres`.
fn temp_dir(name: &str) -> PathBuf {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let dir = format!("/tmp/r2b-pg-{name}-{}-{}", std::process::id(), t.subsec_nanos());
    fs::create_dir_all(&dir).unwrap();
    PathBuf::from(dir)
}

/// Live processes working in `data`: every postgres process, backends included, chdirs
/// there.
fn processes_in(data: &Path) -> Vec<u32> {
    let procs = fs::read_dir("/proc").unwrap().flatten();
    let pids = procs.filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    let cwd = |pid| fs::read_link(format!("/proc/{pid}/cwd")).ok();
    pids.filter(|&p| is_live(p) && cwd(p).as_deref() == Some(data)).collect()
}

async fn select_one(pg: &PrivatePostgres) {
    let url = pg.database_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = client.query_one("SELECT 1::int4, current_database()", &[]).await.unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, String>(1)), (1, pg.database.clone()));
}

fn read_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("postgres.log")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_reuses_and_stops() {
    let dir = temp_dir("reuse");
    let t0 = Instant::now();
    let pg = PrivatePostgres::start(&dir, "r2_broker").await.unwrap();
    eprintln!("first start (initdb, start, create database): {:?}", t0.elapsed());
    let url = format!("postgres://postgres@127.0.0.1:{}/r2_broker", pg.port);
    assert_eq!(pg.database_url(), url);
    select_one(&pg).await;
    let (data, t0) = (pg.data.clone(), Instant::now());
    pg.stop().unwrap();
    eprintln!("stop: {:?}", t0.elapsed());
    assert_eq!(processes_in(&data), Vec::<u32>::new());
    assert!(!data.join("postmaster.pid").exists());

    let t0 = Instant::now();
    let pg = PrivatePostgres::start(&dir, "r2_broker").await.unwrap();
    eprintln!("second start (reuse): {:?}", t0.elapsed());
    select_one(&pg).await;
    assert_eq!(read_log(&dir).matches("Success. You can now start").count(), 1); // one initdb
    drop(pg); // Drop stops it too
    assert_eq!(processes_in(&data), Vec::<u32>::new());
    fs::remove_dir_all(&dir).unwrap();
}

/// What a hard crash leaves: the postmaster SIGKILLed (and reaped by whoever its parent
/// was), `postmaster.pid` and the socket lock left behind, and here backends slow to go
/// (stopped for 1 s), still attached to the old shared memory: first attempts must fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_postmaster_was_killed() {
    let dir = temp_dir("killed");
    let mut pg = PrivatePostgres::start(&dir, "app").await.unwrap();
    let (old_pid, data) = (pg.pid(), pg.data.clone());
    let mut backends = processes_in(&data);
    backends.retain(|&p| p != old_pid);
    assert!(!backends.is_empty());
    backends.iter().for_each(|&p| signal(p, libc::SIGSTOP));
    signal(old_pid, libc::SIGKILL);
    pg.child.take().unwrap().wait().unwrap();
    drop(pg);
    assert!(data.join("postmaster.pid").exists());
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        backends.iter().for_each(|&p| signal(p, libc::SIGCONT));
    });

    let t0 = Instant::now();
    let pg = PrivatePostgres::start(&dir, "app").await.unwrap();
    eprintln!("start after SIGKILL, backends held 1 s: {:?}", t0.elapsed());
    resume.join().unwrap();
    assert!(read_log(&dir).contains("is still in use"), "the retry was not exercised");
    assert_ne!(pg.pid(), old_pid);
    select_one(&pg).await;
    pg.stop().unwrap();
    assert_eq!(processes_in(&data), Vec::<u32>::new());
    fs::remove_dir_all(&dir).unwrap();
}

/// A postmaster of this cluster still running without its owner (here: the handle leaked,
/// so the old postmaster also ends as an unreaped zombie of this process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_over_from_an_orphaned_postmaster() {
    let dir = temp_dir("orphan");
    let pg = PrivatePostgres::start(&dir, "app").await.unwrap();
    let (old_pid, data) = (pg.pid(), pg.data.clone());
    std::mem::forget(pg);

    let t0 = Instant::now();
    let pg = PrivatePostgres::start(&dir, "app").await.unwrap();
    eprintln!("start over an orphaned postmaster: {:?}", t0.elapsed());
    assert!(!is_live(old_pid));
    select_one(&pg).await;
    pg.stop().unwrap();
    assert_eq!(processes_in(&data), Vec::<u32>::new());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refuses_a_folder_postgres_cannot_reach() {
    let dir = temp_dir("locked");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir(dir.join("pg")).unwrap();
    let nobody = (65534, 65534); // not the owner (root), not in its group
    let err = check_traversable(&dir.join("pg"), nobody).unwrap_err().to_string();
    assert!(err.contains(&format!("cannot enter {} (mode 700)", dir.display())), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

/// Options hold for one start only: a setting, a pg_hba that refuses TCP, a 0600 file of
/// the server's user; the next plain start is the plain cluster again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_apply_to_one_start() {
    let dir = temp_dir("options");
    let options = ServerOptions::new()
        .setting("work_mem", "7MB")
        .hba_line("host all all 127.0.0.1/32 reject")
        .file("secret.key", "not a key");
    let pg = PrivatePostgres::start_with(&dir, "app", options).await.unwrap();
    let err = tokio_postgres::connect(&pg.database_url(), tokio_postgres::NoTls).await.err().expect("TCP refused");
    assert!(format!("{err:#?}").contains("rejects connection"), "{err:#?}");
    let socket = format!("host={} port={} user=postgres dbname=app", pg.sock.display(), pg.port);
    let (client, conn) = tokio_postgres::connect(&socket, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let work_mem: String = client.query_one("show work_mem", &[]).await.unwrap().get(0);
    assert_eq!(work_mem, "7MB");
    let key = fs::metadata(pg.data.join("secret.key")).unwrap();
    assert_eq!(key.mode() & 0o777, 0o600);
    assert_eq!(key.uid(), fs::metadata(&pg.data).unwrap().uid(), "owned by the server's user");
    drop(client);
    pg.stop().unwrap();

    let pg = PrivatePostgres::start(&dir, "app").await.unwrap();
    select_one(&pg).await;
    let (client, conn) = tokio_postgres::connect(&pg.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let work_mem: String = client.query_one("show work_mem", &[]).await.unwrap().get(0);
    assert_ne!(work_mem, "7MB");
    drop(client);
    pg.stop().unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

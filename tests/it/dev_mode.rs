//! `r2-broker dev` as a newcomer runs it: the real binary as a child process, an empty data
//! dir, no `DATABASE_URL`. One upload end to end, SIGTERM, nothing left running; then a
//! second run on the same data dir that still knows the asset, and the printed curl
//! walkthrough run verbatim.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

struct Dev {
    child: Child,
    banner: String,
    api: String,
    token: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `r2-broker dev` in `cwd` with only the test's own settings, and waits for its
/// banner (printed once everything is up) and for /readyz.
async fn start(cwd: &Path, data_dir: &Path) -> Dev {
    let (api_port, s3_port) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_r2-broker"));
    cmd.arg("dev").arg("--data-dir").arg(data_dir).args(["--s3-port", &s3_port.to_string()]);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "DATABASE_URL" || ["S3_", "JWT_", "BROKER_"].iter().any(|p| name.starts_with(p)) {
            cmd.env_remove(&*name);
        }
    }
    cmd.env("BROKER_LISTEN", format!("127.0.0.1:{api_port}")).env("BROKER_WORKERS", "2");
    cmd.current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawning r2-broker dev");

    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).try_for_each(|l| tx.send(l)));
    let mut banner = String::new();
    loop {
        let left = START_TIMEOUT.saturating_sub(t0.elapsed());
        let line = lines.recv_timeout(left).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("no complete banner after {:?} ({e}); so far:\n{banner}", t0.elapsed())
        });
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("  curl -sS \"$(python3") {
            break; // the walkthrough's last line
        }
    }
    let field = |prefix: &str| {
        let line = banner.lines().find_map(|l| l.trim_start().strip_prefix(prefix)).expect(prefix);
        line.split_whitespace().next().unwrap().to_owned()
    };
    let (api, token) = (field("API "), field("token: "));
    assert_eq!(api, format!("http://127.0.0.1:{api_port}"));
    assert!(banner.contains(&format!("http://127.0.0.1:{s3_port}")), "{banner}");
    let http = reqwest::Client::new();
    while http.get(format!("{api}/readyz")).send().await.map_or(true, |r| r.status() != 200) {
        assert!(t0.elapsed() < START_TIMEOUT, "/readyz never answered 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("dev mode ready in {:?}", t0.elapsed());
    Dev { child, banner, api, token }
}

/// SIGTERM, a bounded wait, a clean exit, and no process left that works in or names `dir`.
fn stop(mut dev: Dev, dir: &Path) {
    assert!(!processes_using(dir).is_empty(), "the private PostgreSQL should be running in {}", dir.display());
    let t0 = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &dev.child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = dev.child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > STOP_TIMEOUT {
            let _ = dev.child.kill();
            panic!("r2-broker dev did not stop within {STOP_TIMEOUT:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("dev mode stopped in {:?}", t0.elapsed());
    assert!(status.success(), "r2-broker dev exited with {status}");
    // PostgreSQL is waited for before the process exits; allow a moment for stragglers.
    let t0 = Instant::now();
    let mut left = processes_using(dir);
    while !left.is_empty() && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
        left = processes_using(dir);
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// Live (non-zombie) processes whose command line mentions `dir` or whose cwd is inside it.
fn processes_using(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
        if state.is_none_or(|s| s == 'Z' || s == 'X') {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let in_dir = std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir));
        if in_dir || cmdline.contains(&needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

fn temp_dir() -> PathBuf {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let dir = PathBuf::from(format!("/tmp/r2b-dev-{}-{}", std::process::id(), t.subsec_nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn dev_mode_runs_an_upload_stops_cleanly_and_keeps_its_data() {
    let root = temp_dir();
    let data = root.join("data");
    let http = reqwest::Client::new();
    let bytes = b"hello from the dev-mode test\n".to_vec();

    // First run: empty data dir, private PostgreSQL, credentials generated.
    let dev = start(&root, &data).await;
    assert!(dev.banner.contains("first run"), "{}", dev.banner);
    assert!(dev.banner.contains(&format!("private cluster in {}", data.join("postgres").display())), "{}", dev.banner);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(data.join("dev.json")).unwrap().permissions().mode() & 0o777, 0o600);
    let (api, token) = (dev.api.clone(), dev.token.clone());
    let auth = format!("Bearer {token}");

    // create → PUT with the returned headers → complete → download-url → GET
    let body = json!({"filename": "hi.txt", "content_type": "text/plain", "size": bytes.len()});
    let (status, intent) =
        send(http.post(format!("{api}/v1/uploads")).header("authorization", &auth).json(&body)).await;
    assert_eq!(status, 201, "{intent:#}");
    let mut put = http.put(intent["url"].as_str().unwrap()).body(bytes.clone());
    for (name, value) in intent["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let put = put.send().await.unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let id = intent["upload_id"].as_str().unwrap();
    let (status, asset) =
        send(http.post(format!("{api}/v1/uploads/{id}/complete")).header("authorization", &auth)).await;
    // 200 when the dev mode's confirmer (first check 1 s after create) got there first.
    assert!(status == 201 || status == 200, "{status} {asset:#}");
    assert_eq!(asset["owner"], "dev");
    let asset_id = asset["id"].as_str().unwrap().to_owned();
    let download = |api: String, auth: String| {
        let (http, asset_id) = (http.clone(), asset_id.clone());
        async move {
            let url = format!("{api}/v1/assets/{asset_id}/download-url");
            let (status, link) = send(http.get(url).header("authorization", auth)).await;
            assert_eq!(status, 200, "{link:#}");
            http.get(link["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap().to_vec()
        }
    };
    assert_eq!(download(api.clone(), auth.clone()).await, bytes);

    // Dev defaults: the API answers browsers of any origin.
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{api}/v1/uploads"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    // Dev pages: the JS client as it is in clients/js, importable from any origin (module
    // scripts are fetched in CORS mode), and the demo page, opened by the banner's link.
    let client =
        http.get(format!("{api}/client/r2-broker.js")).header("origin", "http://localhost:5173").send().await.unwrap();
    assert_eq!(client.status(), 200);
    let header = |r: &reqwest::Response, name: &str| r.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header(&client, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header(&client, "cache-control"), "no-cache");
    assert_eq!(header(&client, "access-control-allow-origin"), "*");
    assert_eq!(client.text().await.unwrap(), include_str!("../../clients/js/r2-broker.js"));
    let page = http.get(format!("{api}/")).send().await.unwrap();
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert!(page.text().await.unwrap().contains(r#"src="/demo.js""#));
    assert!(dev.banner.contains(&format!("Demo page   {api}/#token={token} ")), "{}", dev.banner);

    // Another owner's token, minted by the CLI.
    let minted = Command::new(env!("CARGO_BIN_EXE_r2-broker"))
        .args(["dev", "token", "--owner", "alice", "--data-dir"])
        .arg(&data)
        .env_remove("JWT_SECRET")
        .output()
        .unwrap();
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let alice = format!("Bearer {}", String::from_utf8(minted.stdout).unwrap().trim());
    let (status, usage) = send(http.get(format!("{api}/v1/usage")).header("authorization", &alice)).await;
    assert_eq!((status, usage["owner"].as_str()), (200, Some("alice")), "{usage:#}");

    stop(dev, &root);

    // Second run on the same data dir: same secret, same database, same files.
    let dev = start(&root, &data).await;
    assert!(dev.banner.contains("data reused"), "{}", dev.banner);
    let (status, list) = send(http.get(format!("{}/v1/assets", dev.api)).header("authorization", &auth)).await;
    assert_eq!(status, 200, "{list:#}");
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(ids, [asset_id.as_str()]);
    assert_eq!(download(dev.api.clone(), format!("Bearer {}", dev.token)).await, bytes);

    // The printed walkthrough, verbatim, in a shell.
    let script: Vec<&str> = dev
        .banner
        .lines()
        .skip_while(|l| !l.starts_with("One upload with curl"))
        .filter_map(|l| l.strip_prefix("  "))
        .collect();
    assert!(script.len() > 5, "{}", dev.banner);
    let mut shell = Command::new("bash");
    shell.args(["-euo", "pipefail", "-c", &script.join("\n")]).env("TMPDIR", &root); // for its mktemp -d
    let out = shell.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "walkthrough failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("store: 200") && stdout.ends_with("hello from r2-broker\n"), "{stdout}");

    stop(dev, &root);
    std::fs::remove_dir_all(&root).unwrap();
}

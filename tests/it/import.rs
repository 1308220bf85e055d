//! `r2-broker import`: a folder and a JSONL export become assets through the upload path
//! (rules, quota, presigned PUT / multipart, HeadObject), checked in the database and the
//! bucket; an import refused midway by the quota resumes; re-runs skip; a dry run writes
//! nothing; the binary's exit code and report. Owners and names stay short (s3s-fs fails on
//! multipart keys past ~132 bytes).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use r2_broker::import::{self, Options, Report, Source};
use serde_json::json;

use crate::support::app::JWT_SECRET;
use crate::support::{TestApp, TestOptions, store};

const MIB: usize = 1 << 20;
/// Multipart above 6 MiB, in 5 MiB parts.
const PROFILES: &str = "[profiles.imp]\nmultipart_threshold = 6291456\npart_size = 5242880\n\
                        [profiles.small]\nmax_size = 1500\n";

/// A temporary folder, removed however the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("r2b-import-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn app() -> TestApp {
    TestApp::spawn_with(TestOptions { profiles: Some(PROFILES.into()), ..Default::default() }).await
}

fn options(owner: &str, profile: &str) -> Options {
    Options { profile: Some(profile.into()), ..Options::new(owner) }
}

async fn run(app: &TestApp, source: Source, options: Options) -> Report {
    import::run(app.state.clone(), source, options, std::future::pending()).await.expect("the import runs")
}

/// Deterministic, distinct bytes per seed.
fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// `(source_path or source_id, key, size, content_type, metadata)` of the owner's assets.
async fn assets(app: &TestApp, owner: &str) -> Vec<(String, String, i64, String, serde_json::Value)> {
    let rows = app
        .db
        .query(
            "select coalesce(metadata->>'source_path', metadata->>'source_id', metadata->>'source_line'), \
                    key, size, content_type, metadata from assets where owner = $1 order by 1",
            &[&owner],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect()
}

#[tokio::test]
async fn a_folder_becomes_assets_with_its_paths_exact_usage_and_a_second_run_skips_all() {
    // Arrange: 30 small files in nested folders, one 11 MiB file (multipart), a hidden
    // file and a symbolic link (neither imported), a JPEG named .png
    let app = app().await;
    let dir = TempDir::new();
    let mut expected = BTreeMap::new();
    for i in 0..30u8 {
        let rel = format!("{}/t{}/f{i}.bin", 2019 + u32::from(i % 3), i % 4);
        let bytes = body(100 + i as usize * 37, i);
        dir.write(&rel, &bytes);
        expected.insert(rel, bytes);
    }
    let jpeg = [&[0xFFu8, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0][..], &body(500, 9)].concat();
    dir.write("p/photo.png", &jpeg);
    expected.insert("p/photo.png".into(), jpeg);
    let big = body(11 * MIB + 5, 3);
    dir.write("big/v.bin", &big);
    expected.insert("big/v.bin".into(), big);
    dir.write(".hidden/x.txt", b"not imported");
    dir.write("p/.DS_Store", b"not imported");
    std::os::unix::fs::symlink("/etc/hostname", dir.0.join("p/link")).unwrap();

    // Act
    let report = run(&app, Source::Dir(dir.0.clone()), options("imp", "imp")).await;

    // Assert: the report, the records, the bucket byte for byte, the usage
    assert_eq!(report.failed, vec![], "{report:?}");
    assert_eq!((report.imported, report.skipped, report.ignored), (32, 0, 1));
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(report.imported_bytes, total as u64);
    let rows = assets(&app, "imp").await;
    assert_eq!(rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), expected.keys().cloned().collect::<Vec<_>>());
    for (path, key, size, content_type, metadata) in &rows {
        assert_eq!(*size as usize, expected[path].len());
        assert_eq!(app.object(key).await.as_deref(), Some(&expected[path][..]), "{path}");
        assert!(key.ends_with(&path.replace('/', "_")), "the path is kept in the key's filename: {key}");
        assert_eq!(metadata["source_sha256"], crate::support::sha256_b64(&expected[path]));
        let want = if path == "p/photo.png" { "image/jpeg" } else { "application/octet-stream" };
        assert_eq!(content_type, want, "{path}");
    }
    let mut keys = app.keys().await;
    keys.sort();
    let mut asset_keys: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    asset_keys.sort();
    assert_eq!(keys, asset_keys, "the bucket holds exactly the imported objects");
    assert_eq!(app.usage_row("imp").await, (total as i64, 32, 0, 0));
    let multipart = app.count("select count(*) from uploads where method = 'multipart' and status = 'completed'").await;
    assert_eq!(multipart, 1, "the 11 MiB file went multipart");

    // Act again: everything is already there
    let again = run(&app, Source::Dir(dir.0.clone()), options("imp", "imp")).await;
    assert_eq!((again.imported, again.skipped, again.failed.len()), (0, 32, 0));
    assert_eq!(app.count("select count(*) from assets").await, 32);
    assert_eq!(app.usage_row("imp").await, (total as i64, 32, 0, 0));
}

#[tokio::test]
async fn an_import_refused_midway_by_the_quota_resumes_and_skips_what_is_done() {
    // Arrange: ten 1,000-byte files, a quota with room for five
    let app = app().await;
    let dir = TempDir::new();
    for i in 0..10u8 {
        dir.write(&format!("d{}/n{i}.bin", i % 2), &body(1000, i));
    }
    app.set_quota("rq", Some(5500), None).await;

    // Act: the first run stops at the quota
    let opts = Options { concurrency: 3, ..options("rq", "imp") };
    let first = run(&app, Source::Dir(dir.0.clone()), opts.clone()).await;

    // Assert: five in, five refused with the quota's reason, nothing left reserved
    assert_eq!((first.imported, first.skipped, first.failed.len()), (5, 0, 5), "{first:?}");
    assert!(first.failed.iter().all(|f| f.reason.starts_with("quota_exceeded")), "{:?}", first.failed);
    assert_eq!(app.usage_row("rq").await, (5000, 5, 0, 0));

    // Act: room for all, run the same import again
    app.set_quota("rq", Some(100_000), None).await;
    let second = run(&app, Source::Dir(dir.0.clone()), opts).await;

    // Assert: the rest imported, the first five skipped, no duplicates, usage exact
    assert_eq!((second.imported, second.skipped, second.failed.len()), (5, 5, 0), "{second:?}");
    assert_eq!(app.count("select count(*) from assets").await, 10);
    assert_eq!(app.count("select count(distinct metadata->>'source_path') from assets").await, 10);
    assert_eq!(app.usage_row("rq").await, (10_000, 10, 0, 0));
    assert_eq!(app.keys().await.len(), 10);
}

#[tokio::test]
async fn an_import_into_a_collection_is_held_to_its_limit_and_listed_in_it() {
    // Arrange: six files, a collection with room for four
    let app = app().await;
    let dir = TempDir::new();
    for i in 0..6u8 {
        dir.write(&format!("room/v{i}.ogg"), &body(500, i));
    }
    let room = app.post("/v1/collections", &app.token("rc"), json!({"name": "Room", "max_objects": 4})).await.body;
    let id: uuid::Uuid = room["id"].as_str().unwrap().parse().unwrap();

    // Act
    let report = run(&app, Source::Dir(dir.0.clone()), Options { collection: Some(id), ..options("rc", "imp") }).await;

    // Assert: four in the collection, two refused by its limit, the counters exact
    assert_eq!((report.imported, report.failed.len()), (4, 2), "{report:?}");
    assert!(report.failed.iter().all(|f| f.reason.contains("collection")), "{:?}", report.failed);
    let listed = app.get(&format!("/v1/assets?collection={id}"), &app.token("rc")).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 4);
    let got = app.get(&format!("/v1/collections/{id}"), &app.token("rc")).await;
    assert_eq!(
        got.body["usage"],
        json!({"used_bytes": 2000, "used_objects": 4, "reserved_bytes": 0, "reserved_objects": 0})
    );
    assert_eq!(app.usage_row("rc").await, (2000, 4, 0, 0));
}

#[tokio::test]
async fn a_dry_run_checks_rules_and_quota_room_and_writes_nothing() {
    // Arrange: a profile allowing 1,500 bytes; one file above it
    let app = app().await;
    let dir = TempDir::new();
    dir.write("a.txt", &[b'a'; 1000]);
    dir.write("s/b.txt", &[b'b'; 1000]);
    dir.write("s/big.txt", &[b'c'; 2000]);

    // Act
    let dry = Options { dry_run: true, ..options("dr", "small") };
    let report = run(&app, Source::Dir(dir.0.clone()), dry.clone()).await;

    // Assert: what would happen, and no trace of it
    assert_eq!((report.planned, report.planned_bytes, report.imported), (2, 2000, 0), "{report:?}");
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].source, "s/big.txt");
    assert!(report.failed[0].reason.starts_with("file_too_large"), "{:?}", report.failed);
    assert_eq!(report.quota_shortfall, None);
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    assert_eq!(app.count("select count(*) from assets").await, 0);
    assert_eq!(app.usage_row("dr").await, (0, 0, 0, 0));
    assert_eq!(app.keys().await, Vec::<String>::new());

    // A quota too small for the planned files is reported, still without writing
    app.set_quota("dr", Some(1500), None).await;
    let short = run(&app, Source::Dir(dir.0.clone()), dry).await;
    let q = short.quota_shortfall.as_deref().expect("the quota shortfall is reported");
    assert!(q.contains("room for 1500 bytes") && q.contains("needs 2000 bytes"), "{q}");
    assert!(!short.succeeded());
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    assert_eq!(app.keys().await, Vec::<String>::new());
}

/// Lines as `psql -At -c "select json_build_object(...)"` prints them (`"key" : value`), the
/// base64 as `encode(data, 'base64')` makes it: a line break every 76 characters.
fn psql_line(id: i64, name: &str, mime: &str, data: &[u8]) -> String {
    let b64 = STANDARD.encode(data);
    let wrapped: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let json_text = serde_json::to_string(&wrapped.join("\n")).unwrap();
    format!(r#"{{"id" : {id}, "filename" : "{name}", "content_type" : "{mime}", "data_base64" : {json_text}}}"#)
}

#[tokio::test]
async fn the_binary_imports_a_jsonl_export_and_exits_non_zero_for_its_malformed_line() {
    // Arrange: padded and unpadded base64, a psql line with its line breaks, a malformed
    // line, a line naming a file beside the export
    let app = app().await;
    let dir = TempDir::new();
    let wide = body(300, 5);
    dir.write("files/doc.txt", b"a document beside the export");
    let lines = [
        json!({"id": "a1", "filename": "hello.txt", "content_type": "text/plain", "data_base64": STANDARD.encode("hello")})
            .to_string(),
        json!({"id": 2, "filename": "hi.txt", "content_type": "text/plain", "data_base64": STANDARD_NO_PAD.encode("hi!!x")})
            .to_string(),
        psql_line(3, "w.bin", "application/octet-stream", &wide),
        r#"{"id": 4, "filename": "broken.txt", "data_base64": "#.to_owned(),
        json!({"filename": "doc.txt", "content_type": "text/plain", "path": "files/doc.txt",
               "metadata": {"album": "x", "n": 3}})
        .to_string(),
    ];
    let export = dir.write("images.jsonl", lines.join("\n").as_bytes());

    // Act: the real binary, configured like `serve` from the environment
    let (db_url, bucket, no_dev) = (app.database_url.clone(), app.bucket.clone(), dir.0.join("no-dev-here"));
    let run = move || {
        Command::new(env!("CARGO_BIN_EXE_r2-broker"))
            .args(["import", "jsonl"])
            .arg(&export)
            .args(["--owner", "zi", "--dev-data-dir"])
            .arg(&no_dev)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db_url)
            .env("S3_ENDPOINT", &store().endpoint)
            .env("S3_BUCKET", &bucket)
            .env("S3_PROVIDER", "s3")
            .env("S3_ACCESS_KEY_ID", &store().access_key)
            .env("S3_SECRET_ACCESS_KEY", &store().secret_key)
            .env("JWT_SECRET", JWT_SECRET)
            .output()
            .expect("r2-broker import runs")
    };
    let out = tokio::task::spawn_blocking(run.clone()).await.unwrap();

    // Assert: exit 1 because of line 4, the report, the records and bytes
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("imported: 4 files"), "{stdout}");
    assert!(stdout.contains("failed: 1\n"), "{stdout}");
    assert!(stdout.contains("FAILED images.jsonl:4: line 4: not a valid import line"), "{stdout}");
    let rows = assets(&app, "zi").await;
    let by_source: BTreeMap<_, _> = rows.iter().map(|r| (r.0.as_str(), r)).collect();
    assert_eq!(by_source.keys().copied().collect::<Vec<_>>(), ["2", "3", "5", "a1"]);
    let expect = [("a1", &b"hello"[..]), ("2", b"hi!!x"), ("3", &wide), ("5", b"a document beside the export")];
    for (source, bytes) in expect {
        let (_, key, size, _, metadata) = by_source[source];
        assert_eq!(app.object(key).await.as_deref(), Some(bytes), "{source}");
        assert_eq!(*size as usize, bytes.len());
        assert_eq!(metadata["source_file"], "images.jsonl");
    }
    let meta = &by_source["3"].4;
    assert_eq!((meta["source_id"].as_str(), meta["source_line"].as_str()), (Some("3"), Some("3")));
    let meta = &by_source["5"].4;
    assert_eq!(
        (meta["album"].as_str(), meta["n"].as_str(), meta["source_line"].as_str()),
        (Some("x"), Some("3"), Some("5"))
    );
    assert!(meta.get("source_id").is_none());
    let used = 5 + 5 + 300 + b"a document beside the export".len() as i64;
    assert_eq!(app.usage_row("zi").await, (used, 4, 0, 0));

    // A second run skips the four and still reports the malformed line
    let out = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("imported: 0 files") && stdout.contains("skipped: 4 files"), "{stdout}");
    assert_eq!(app.usage_row("zi").await, (used, 4, 0, 0));
}

#[tokio::test]
async fn an_interrupted_import_finishes_what_is_in_flight_and_the_next_run_does_the_rest() {
    // Arrange: 20 files
    let app = app().await;
    let dir = TempDir::new();
    for i in 0..20u8 {
        dir.write(&format!("i/{i}.bin"), &body(700, i));
    }
    let opts = Options { concurrency: 2, ..options("ir", "imp") };

    // Act: interrupted at once (Ctrl-C in the CLI): at most the two started items run
    let report =
        import::run(app.state.clone(), Source::Dir(dir.0.clone()), opts.clone(), std::future::ready(())).await.unwrap();

    // Assert: the started ones finished (nothing pending, nothing reserved), the rest left
    assert!(report.interrupted && !report.succeeded());
    assert!(report.imported <= 2 && report.failed.is_empty(), "{report:?}");
    assert_eq!(app.count("select count(*) from uploads where status <> 'completed'").await, 0);
    let done = report.imported as i64;
    assert_eq!(app.usage_row("ir").await, (700 * done, done, 0, 0));

    // Act: the same import again
    let rest = run(&app, Source::Dir(dir.0.clone()), opts).await;

    // Assert: the rest, once each
    assert_eq!((rest.imported, rest.skipped, rest.failed.len()), (20 - report.imported, report.imported, 0));
    assert_eq!(app.count("select count(distinct metadata->>'source_path') from assets").await, 20);
    assert_eq!(app.count("select count(*) from assets").await, 20);
    assert_eq!(app.usage_row("ir").await, (14_000, 20, 0, 0));
}

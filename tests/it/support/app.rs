//! `TestApp`: the real application on port 0, with helpers per endpoint that return the
//! status, headers and JSON body, and direct access to the database and the bucket so tests
//! can assert what was (not) written.

use std::net::SocketAddr;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region, RequestChecksumCalculation};
use jsonwebtoken::{EncodingKey, Header, encode};
use r2_broker::Application;
use r2_broker::config::Settings;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::chaos::ChaosProxy;
use super::{db, store};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Settings every test app shares; tests change what they need.
pub fn base_settings(database_url: &str) -> Settings {
    Settings {
        listen: Some("127.0.0.1:0".into()),
        database_url: Some(database_url.into()),
        s3_endpoint: Some(store().endpoint.clone()),
        s3_bucket: Some("unused".into()),
        s3_access_key_id: Some(store().access_key.clone()),
        s3_secret_access_key: Some(store().secret_key.clone()),
        s3_provider: Some("s3".into()),
        jwt_secret: Some(JWT_SECRET.into()),
        workers: Some("2".into()),
        db_pool_size: Some("8".into()),
        reaper_interval: Some("0".into()),
        // Off unless a test turns it on (tests/it/auto_confirm.rs): a test that PUTs and then
        // completes must see its own `complete` do the work.
        confirm_interval: Some("0".into()),
        // Asset jobs and webhook deliveries run when a test runs a pass itself
        // (`jobs::Worker::run_once`, `webhooks::deliver_once`), never behind its back.
        jobs: Some("off".into()),
        ..Default::default()
    }
}

pub type Tweak = Box<dyn FnOnce(&mut Settings)>;

#[derive(Default)]
pub struct TestOptions {
    /// Contents of a profiles TOML file.
    pub profiles: Option<String>,
    /// Put a chaos proxy in front of PostgreSQL / the store.
    pub db_proxy: bool,
    pub s3_proxy: bool,
    /// Last word on the settings.
    pub tweak: Option<Tweak>,
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// A direct connection to this test's database.
    pub db: tokio_postgres::Client,
    pub database_url: String,
    /// An SDK client on the store (direct, not through any proxy).
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub db_proxy: Option<ChaosProxy>,
    pub s3_proxy: Option<ChaosProxy>,
    pub state: r2_broker::state::AppState,
    handle: actix_web::dev::ServerHandle,
    db_name: String,
    _profiles_file: Option<tempfile_path::TempPath>,
}

/// A minimal temporary file holder (no extra crate).
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn addr_of(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let hostport = rest.split('/').next().unwrap().rsplit('@').next().unwrap();
    hostport.parse().unwrap()
}

pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("auto"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            store().access_key.clone(),
            store().secret_key.clone(),
            None,
            None,
            "test",
        ))
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A call's outcome.
#[derive(Debug)]
pub struct Call {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Call {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts an error answer in the contract's shape and returns its message.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.code(), code, "{:#}", self.body);
        let rid = self.headers.get("x-request-id").expect("x-request-id header").to_str().unwrap();
        assert_eq!(self.body["error"]["request_id"], rid, "request_id equals the header");
        self.body["error"]["message"].as_str().unwrap().to_owned()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(opts: TestOptions) -> Self {
        r2_broker::telemetry::init(false);
        let (database_url, db_name) = db::fresh_database().await;
        let bucket = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let s3_endpoint = store().endpoint.clone();
        let s3 = s3_client(&s3_endpoint);
        s3.create_bucket().bucket(&bucket).send().await.expect("create the test bucket");

        let db_proxy = if opts.db_proxy { Some(ChaosProxy::start(addr_of(&database_url)).await) } else { None };
        let s3_proxy = if opts.s3_proxy { Some(ChaosProxy::start(addr_of(&s3_endpoint)).await) } else { None };
        let app_db_url = match &db_proxy {
            Some(p) => database_url.replace(&addr_of(&database_url).to_string(), &p.addr.to_string()),
            None => database_url.clone(),
        };
        let mut settings = base_settings(&app_db_url);
        settings.s3_bucket = Some(bucket.clone());
        if let Some(p) = &s3_proxy {
            settings.s3_endpoint = Some(format!("http://{}", p.addr));
        }
        let profiles_file = opts.profiles.map(|text| {
            let path = std::env::temp_dir().join(format!("r2b-profiles-{}.toml", uuid::Uuid::new_v4()));
            std::fs::write(&path, text).unwrap();
            settings.profiles = Some(path.clone());
            tempfile_path::TempPath(path)
        });
        if let Some(tweak) = opts.tweak {
            tweak(&mut settings);
        }
        let config = settings.validate().expect("valid test settings");
        let app = Application::build(config).await.expect("the application starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let db = db::client(&database_url).await;
        Self {
            base,
            http: reqwest::Client::new(),
            db,
            database_url,
            s3,
            bucket,
            db_proxy,
            s3_proxy,
            state,
            handle,
            db_name,
            _profiles_file: profiles_file,
        }
    }

    /// An HS256 token for `sub`, valid for an hour, with the given scope string.
    pub fn token_with(&self, claims: Value) -> String {
        encode(&Header::default(), &claims, &EncodingKey::from_secret(JWT_SECRET.as_bytes())).unwrap()
    }

    pub fn token(&self, sub: &str) -> String {
        self.token_with(json!({"sub": sub, "exp": now() + 3600}))
    }

    pub fn admin_token(&self, sub: &str) -> String {
        self.token_with(json!({"sub": sub, "exp": now() + 3600, "scope": "broker:admin"}))
    }

    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Call {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        to_call(req.send().await.expect("the broker answers")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Call {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Call {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Call {
        self.call("DELETE", path, Some(token), None).await
    }

    /// `POST /v1/uploads` for `owner` with a body.
    pub async fn create(&self, owner: &str, body: Value) -> Call {
        self.post("/v1/uploads", &self.token(owner), body).await
    }

    /// Sends `bytes` to a `put` intent's URL with exactly its headers.
    pub async fn put_to(&self, intent: &Value, bytes: Vec<u8>) -> reqwest::Response {
        self.put_with(intent, bytes, &[]).await
    }

    /// Like `put_to`, with some headers replaced (to prove the store refuses them).
    pub async fn put_with(&self, intent: &Value, bytes: Vec<u8>, overrides: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.put(intent["url"].as_str().expect("intent url"));
        for (name, value) in intent["headers"].as_object().expect("intent headers") {
            // reqwest sets content-length from the body (hyper omits it for an empty body,
            // so the zero-byte case sets it explicitly below).
            if name == "content-length" || overrides.iter().any(|(n, _)| n == name) {
                continue;
            }
            req = req.header(name, value.as_str().unwrap());
        }
        for (n, v) in overrides {
            req = req.header(*n, *v);
        }
        if bytes.is_empty() {
            req = req.header("content-length", "0");
        }
        req.body(bytes).send().await.expect("the store answers")
    }

    /// Create, upload and complete one `put` upload; returns the asset JSON.
    pub async fn upload(&self, owner: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Value {
        self.upload_in(owner, None, filename, content_type, bytes).await
    }

    /// `upload`, in `profile` when given (else the request names none).
    pub async fn upload_in(
        &self,
        owner: &str,
        profile: Option<&str>,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Value {
        let mut body = json!({"filename": filename, "content_type": content_type, "size": bytes.len()});
        if let Some(p) = profile {
            body["profile"] = json!(p);
        }
        let c = self.create(owner, body).await;
        assert_eq!(c.status, 201, "{:#}", c.body);
        let put = self.put_to(&c.body, bytes.to_vec()).await;
        assert_eq!(put.status(), 200, "PUT");
        let done = self.complete(owner, &c.body["upload_id"]).await;
        assert_eq!(done.status, 201, "{:#}", done.body);
        done.body
    }

    pub async fn complete(&self, owner: &str, upload_id: &Value) -> Call {
        let id = upload_id.as_str().unwrap();
        self.call("POST", &format!("/v1/uploads/{id}/complete"), Some(&self.token(owner)), None).await
    }

    /// The object's bytes, or None when the bucket has no such key.
    pub async fn object(&self, key: &str) -> Option<Vec<u8>> {
        match self.s3.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
            Err(_) => None,
        }
    }

    /// Every key in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let out = self.s3.list_objects_v2().bucket(&self.bucket).send().await.unwrap();
        out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    }

    /// `(used_bytes, used_objects, reserved_bytes, reserved_objects)` straight from the table.
    pub async fn usage_row(&self, owner: &str) -> (i64, i64, i64, i64) {
        self.db
            .query_opt(
                "select used_bytes, used_objects, reserved_bytes, reserved_objects from owners where owner = $1",
                &[&owner],
            )
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .unwrap_or((0, 0, 0, 0))
    }

    pub async fn upload_status(&self, id: &str) -> String {
        let id: uuid::Uuid = id.parse().unwrap();
        self.db.query_one("select status from uploads where id = $1", &[&id]).await.unwrap().get(0)
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.db.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// Sets a quota as an admin would.
    pub async fn set_quota(&self, owner: &str, bytes: Option<i64>, objects: Option<i64>) {
        let mut body = serde_json::Map::new();
        if let Some(b) = bytes {
            body.insert("quota_bytes".into(), b.into());
        }
        if let Some(o) = objects {
            body.insert("quota_objects".into(), o.into());
        }
        let c = self
            .call(
                "PUT",
                &format!("/v1/admin/owners/{owner}/quota"),
                Some(&self.admin_token("admin")),
                Some(Value::Object(body)),
            )
            .await;
        assert_eq!(c.status, 200, "{:#}", c.body);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        db::drop_database(std::mem::take(&mut self.db_name));
    }
}

pub async fn to_call(res: reqwest::Response) -> Call {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    Call { status, headers, body }
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

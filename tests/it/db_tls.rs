//! PostgreSQL over TLS against a real server: a private cluster started with `ssl=on`, a CA
//! and a server certificate (for `localhost` and 127.0.0.1) generated here, and a pg_hba
//! that accepts TLS connections only (`hostssl`). Each case starts the broker's pool and
//! migrations as `serve` does and asserts what the server saw (`pg_stat_ssl`), or that start
//! failed with a message naming the setting.

use std::path::PathBuf;

use r2_broker::Application;
use r2_broker_dev::postgres::{PrivatePostgres, ServerOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::support::app::base_settings;
use crate::support::db::fresh_database;

/// A TLS-only server and the PEM file of the CA that signed its certificate.
struct TlsServer {
    pg: Option<PrivatePostgres>,
    port: u16,
    ca_file: String,
    dir: PathBuf,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        drop(self.pg.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl TlsServer {
    async fn start(name: &str) -> Self {
        let ca = ca("r2-broker test CA");
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = PathBuf::from(format!("/tmp/r2b-pg-tls-{name}-{}-{t}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let options = ServerOptions::new()
            .file("server.crt", cert.pem())
            .file("server.key", key.serialize_pem())
            .setting("ssl", "on")
            .setting("ssl_cert_file", "server.crt")
            .setting("ssl_key_file", "server.key")
            .hba_line("hostssl all all 127.0.0.1/32 trust")
            .hba_line("hostssl all all ::1/128 trust");
        let pg = PrivatePostgres::start_with(&dir.join("pg"), "app", options).await.unwrap();
        let port = pg.database_url().rsplit_once(':').unwrap().1.split('/').next().unwrap().parse().unwrap();
        Self { pg: Some(pg), port, ca_file: ca_file.display().to_string(), dir }
    }

    /// `postgres://postgres@HOST:PORT/app?QUERY`
    fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/app?{query}", self.port)
    }
}

/// The pool and migrations as `serve` builds them; the TLS version the session got.
async fn connect(url: &str) -> Result<Option<String>, String> {
    let config = base_settings(url).validate().map_err(|e| e.to_string())?;
    let db = r2_broker::db::pool(&config, 2).map_err(|e| format!("{e:#}"))?;
    r2_broker::db::migrate(&db).await.map_err(|e| e.to_string())?;
    let tls = db.session_tls().await.map_err(|e| e.to_string());
    db.close();
    tls
}

#[tokio::test]
async fn require_encrypts_and_verify_full_with_the_ca_accepts_the_certified_host() {
    let server = TlsServer::start("full").await;

    let require = connect(&server.url("127.0.0.1", "sslmode=require")).await.unwrap();
    assert!(require.is_some_and(|v| v.starts_with("TLS")));
    let ca = &server.ca_file;
    for host in ["localhost", "127.0.0.1"] {
        let tls = connect(&server.url(host, &format!("sslmode=verify-full&sslrootcert={ca}"))).await;
        assert!(tls.as_ref().is_ok_and(Option::is_some), "{host}: {tls:?}");
    }
    // The key=value form a provider may hand out instead of a URL.
    let kv =
        format!("host=localhost port={} user=postgres dbname=app sslmode=verify-full sslrootcert='{ca}'", server.port);
    assert!(connect(&kv).await.unwrap().is_some());
}

/// `host` is the name checked, `hostaddr` where we connect (as in libpq): a certificate for
/// localhost is not one for db.example.invalid.
#[tokio::test]
async fn verify_full_refuses_a_host_the_certificate_does_not_name_at_start_and_verify_ca_accepts_it() {
    let server = TlsServer::start("wrong-host").await;
    let ca = &server.ca_file;

    let url = server.url("db.example.invalid", &format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"));
    let err = Application::build(base_settings(&url).validate().unwrap()).await.err().expect("start refused");
    let err = format!("{err:#}");
    assert!(err.starts_with("DATABASE_URL"), "{err}");
    assert!(err.contains("sslmode=verify-full"), "{err}");
    assert!(err.contains(r#"not valid for the host name "db.example.invalid""#), "{err}");

    let url = server.url("db.example.invalid", &format!("hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}"));
    assert!(connect(&url).await.unwrap().is_some());
}

/// Another CA's bundle: refused by verify-ca, and by require too (libpq: require with an
/// sslrootcert checks the chain).
#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_when_the_chain_is_checked() {
    let server = TlsServer::start("other-ca").await;
    let other = server.dir.join("other-ca.pem");
    std::fs::write(&other, ca("another CA").pem()).unwrap();
    let other = other.display();

    for mode in ["verify-ca", "require"] {
        let err = connect(&server.url("localhost", &format!("sslmode={mode}&sslrootcert={other}"))).await.unwrap_err();
        assert!(
            err.contains(&format!("sslmode={mode}: the server's certificate is not signed by sslrootcert=")),
            "{err}"
        );
    }
    // No sslrootcert: the system's roots, which do not hold a test CA.
    let err = connect(&server.url("localhost", "sslmode=verify-full")).await.unwrap_err();
    assert!(err.contains("system"), "{err}");
}

#[tokio::test]
async fn plain_text_is_refused_by_a_tls_only_server_and_prefer_uses_tls() {
    let server = TlsServer::start("plain").await;

    let err = connect(&server.url("127.0.0.1", "sslmode=disable")).await.unwrap_err();
    assert!(err.contains("no pg_hba.conf entry") && err.contains("no encryption"), "{err}");
    // prefer (also the default without sslmode): TLS when the server offers it ...
    for query in ["sslmode=prefer", ""] {
        let tls = connect(&server.url("127.0.0.1", query)).await.unwrap();
        assert!(tls.is_some(), "{query:?}");
    }
    // ... and plain text when it does not (the shared test cluster has no ssl).
    let (url, name) = fresh_database().await;
    assert_eq!(connect(&format!("{url}?sslmode=prefer")).await, Ok(None));
    crate::support::db::drop_database(name);
}

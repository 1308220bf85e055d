//! Authentication and authorisation: every malformed, expired or wrongly signed token is
//! `401 unauthorized` with `WWW-Authenticate: Bearer`, issuer/audience and public keys are
//! enforced as configured, and only the admin scope may act for another owner.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::support::app::{now, to_call};
use crate::support::{Call, TestApp, TestOptions};

fn body() -> Value {
    json!({"filename": "a.txt", "content_type": "text/plain", "size": 5})
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + 3600})
}

fn assert_unauthorized(c: &Call, case: &str) {
    assert_eq!(c.status, 401, "{case}: {:#}", c.body);
    c.assert_error(401, "unauthorized");
    assert_eq!(c.headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"), "{case}");
}

/// `POST /v1/uploads` with a raw `Authorization` header (or none).
async fn create_with_header(app: &TestApp, authorization: Option<&str>) -> Call {
    let mut req = app.http.post(format!("{}/v1/uploads", app.base)).json(&body());
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    to_call(req.send().await.unwrap()).await
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    encode(&Header::new(alg), claims, key).unwrap()
}

/// A key pair `(private PKCS#8 PEM, public SPKI PEM)` made by the `openssl` CLI, or the
/// fallback constants below when it is not installed.
fn keypair(genpkey_args: &[&str], fallback: (&str, &str)) -> (Vec<u8>, Vec<u8>) {
    let generated = (|| {
        let out = Command::new("openssl").arg("genpkey").args(genpkey_args).stderr(Stdio::null()).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let mut child = Command::new("openssl")
            .args(["pkey", "-pubout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(&out.stdout).ok()?;
        let public = child.wait_with_output().ok()?;
        public.status.success().then_some((out.stdout, public.stdout))
    })();
    generated.unwrap_or_else(|| (fallback.0.as_bytes().to_vec(), fallback.1.as_bytes().to_vec()))
}

fn ec_keypair() -> (Vec<u8>, Vec<u8>) {
    keypair(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], (EC_PRIVATE, EC_PUBLIC))
}

fn ed_keypair() -> (Vec<u8>, Vec<u8>) {
    keypair(&["-algorithm", "ED25519"], (ED_PRIVATE, ED_PUBLIC))
}

/// An app that trusts only `public_pem` (no JWT_SECRET).
async fn spawn_with_public_key(public_pem: &[u8]) -> TestApp {
    let path = std::env::temp_dir().join(format!("r2b-jwt-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&path, public_pem).unwrap();
    let file = path.clone();
    let app = TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(move |s| {
            s.jwt_secret = None;
            s.jwt_public_key_file = Some(file);
        })),
        ..Default::default()
    })
    .await;
    let _ = std::fs::remove_file(&path);
    app
}

#[tokio::test]
async fn a_missing_or_non_bearer_authorization_is_401() {
    let app = TestApp::spawn().await;
    for (case, header) in [
        ("missing header", None),
        ("basic scheme", Some("Basic YWxpY2U6c2VjcmV0")),
        ("bearer without a token", Some("Bearer")),
        ("bearer with an empty token", Some("Bearer ")),
        ("garbage token", Some("Bearer not-a-jwt")),
        ("three garbage segments", Some("Bearer aaa.bbb.ccc")),
    ] {
        assert_unauthorized(&create_with_header(&app, header).await, case);
    }
    // The scheme is case-insensitive: a good token with `bearer` works.
    let ok = create_with_header(&app, Some(&format!("bearer {}", app.token("alice")))).await;
    assert_eq!(ok.status, 201, "{:#}", ok.body);
    assert_eq!(app.count("select count(*) from uploads").await, 1, "only the good request reserved");
}

#[tokio::test]
async fn an_expired_token_or_one_without_exp_is_401() {
    let app = TestApp::spawn().await;
    let expired = app.token_with(json!({"sub": "alice", "exp": now() - 5}));
    assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&expired), Some(body())).await, "expired");
    let no_exp = app.token_with(json!({"sub": "alice"}));
    assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&no_exp), Some(body())).await, "no exp");
    let future_nbf = app.token_with(json!({"sub": "alice", "exp": now() + 3600, "nbf": now() + 600}));
    assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&future_nbf), Some(body())).await, "nbf");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    assert_eq!(app.count("select count(*) from owners").await, 0);
}

/// Verified tokens are cached (auth/cache.rs): a token that worked must still stop working
/// the second its `exp` passes.
#[tokio::test]
async fn a_token_that_worked_is_refused_once_it_expires() {
    let app = TestApp::spawn().await;
    let exp = now() + 2;
    let token = app.token_with(json!({"sub": "alice", "exp": exp}));
    let first = app.call("POST", "/v1/uploads", Some(&token), Some(body())).await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    let again = app.call("POST", "/v1/uploads", Some(&token), Some(body())).await;
    assert_eq!(again.status, 201, "{:#}", again.body);
    while now() <= exp {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&token), Some(body())).await, "expired after use");
    assert_eq!(app.count("select count(*) from uploads").await, 2, "only the calls before exp reserved");
}

#[tokio::test]
async fn a_token_without_a_usable_sub_is_401() {
    let app = TestApp::spawn().await;
    for (case, claims) in [
        ("missing sub", json!({"exp": now() + 3600})),
        ("empty sub", json!({"sub": "", "exp": now() + 3600})),
        ("numeric sub", json!({"sub": 42, "exp": now() + 3600})),
        ("256-byte sub", json!({"sub": "a".repeat(256), "exp": now() + 3600})),
    ] {
        let token = app.token_with(claims);
        assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&token), Some(body())).await, case);
    }
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    // 255 bytes is the limit, and it is accepted.
    let long = "b".repeat(255);
    let usage = app.get("/v1/usage", &app.token(&long)).await;
    assert_eq!(usage.status, 200, "{:#}", usage.body);
    assert_eq!(usage.body["owner"], long.as_str());
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401() {
    let app = TestApp::spawn().await;
    let key = EncodingKey::from_secret(b"another-secret-another-secret-0123456");
    let token = sign(Algorithm::HS256, &key, &claims("alice"));
    assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&token), Some(body())).await, "other secret");
    // A valid token with its signature tampered with.
    let good = app.token("alice");
    let tampered = format!("{}x", &good[..good.len() - 1]);
    assert_unauthorized(&app.call("GET", "/v1/usage", Some(&tampered), None).await, "tampered");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
}

#[tokio::test]
async fn an_alg_none_token_is_401() {
    let app = TestApp::spawn().await;
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = b64(json!({"sub": "mallory", "exp": now() + 3600, "scope": "broker:admin"}));
    for header in [json!({"alg": "none", "typ": "JWT"}), json!({"alg": "None"}), json!({"alg": "HS256"})] {
        let token = format!("{}.{payload}.", b64(header.clone()));
        assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&token), Some(body())).await, &header.to_string());
    }
    assert_eq!(app.count("select count(*) from uploads").await, 0);
}

#[tokio::test]
async fn an_rs256_token_is_401_when_only_jwt_secret_is_configured() {
    let app = TestApp::spawn().await;
    let (private, _) = keypair(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], (RSA_PRIVATE, ""));
    let token = sign(Algorithm::RS256, &EncodingKey::from_rsa_pem(&private).unwrap(), &claims("alice"));
    assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&token), Some(body())).await, "RS256");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_configured() {
    let app = TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(|s| {
            s.jwt_issuer = Some("https://auth.example".into());
            s.jwt_audience = Some("r2-broker".into());
        })),
        ..Default::default()
    })
    .await;
    let exp = now() + 3600;
    for (case, claims) in [
        ("neither", json!({"sub": "alice", "exp": exp})),
        ("no aud", json!({"sub": "alice", "exp": exp, "iss": "https://auth.example"})),
        ("no iss", json!({"sub": "alice", "exp": exp, "aud": "r2-broker"})),
        ("wrong iss", json!({"sub": "alice", "exp": exp, "iss": "https://evil.example", "aud": "r2-broker"})),
        ("wrong aud", json!({"sub": "alice", "exp": exp, "iss": "https://auth.example", "aud": "other"})),
    ] {
        let token = app.token_with(claims);
        assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&token), Some(body())).await, case);
    }
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    let good = app.token_with(json!({"sub": "alice", "exp": exp, "iss": "https://auth.example", "aud": "r2-broker"}));
    let c = app.call("POST", "/v1/uploads", Some(&good), Some(body())).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    let aud_list =
        app.token_with(json!({"sub": "alice", "exp": exp, "iss": "https://auth.example", "aud": ["x", "r2-broker"]}));
    assert_eq!(app.call("GET", "/v1/usage", Some(&aud_list), None).await.status, 200, "aud as an array");
}

#[tokio::test]
async fn an_es256_public_key_accepts_its_tokens_and_refuses_hs256_made_with_the_pem() {
    let (private, public) = ec_keypair();
    let app = spawn_with_public_key(&public).await;
    let token = sign(Algorithm::ES256, &EncodingKey::from_ec_pem(&private).unwrap(), &claims("erin"));
    let c = app.call("POST", "/v1/uploads", Some(&token), Some(body())).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    let id: uuid::Uuid = c.body["upload_id"].as_str().unwrap().parse().unwrap();
    let owner: String = app.db.query_one("select owner from uploads where id = $1", &[&id]).await.unwrap().get(0);
    assert_eq!(owner, "erin");

    // HS/RS confusion: the public PEM used as an HMAC secret.
    let confused = sign(Algorithm::HS256, &EncodingKey::from_secret(&public), &claims("mallory"));
    assert_unauthorized(&app.call("POST", "/v1/uploads", Some(&confused), Some(body())).await, "HS256 with PEM");
    // No JWT_SECRET configured: the usual test token is refused too.
    assert_unauthorized(&app.call("GET", "/v1/usage", Some(&app.token("erin")), None).await, "HS256");
    // Another EC key.
    let (other, _) = ec_keypair();
    let forged = sign(Algorithm::ES256, &EncodingKey::from_ec_pem(&other).unwrap(), &claims("mallory"));
    assert_unauthorized(&app.call("GET", "/v1/usage", Some(&forged), None).await, "other EC key");
    assert_eq!(app.count("select count(*) from uploads").await, 1);
}

#[tokio::test]
async fn an_ed25519_public_key_accepts_its_tokens_and_refuses_hs256_made_with_the_pem() {
    let (private, public) = ed_keypair();
    let app = spawn_with_public_key(&public).await;
    let token = sign(Algorithm::EdDSA, &EncodingKey::from_ed_pem(&private).unwrap(), &claims("fred"));
    let c = app.call("GET", "/v1/usage", Some(&token), None).await;
    assert_eq!(c.status, 200, "{:#}", c.body);
    assert_eq!(c.body["owner"], "fred");
    let confused = sign(Algorithm::HS256, &EncodingKey::from_secret(&public), &claims("mallory"));
    assert_unauthorized(&app.call("GET", "/v1/usage", Some(&confused), None).await, "HS256 with PEM");
    let (other, _) = ed_keypair();
    let forged = sign(Algorithm::EdDSA, &EncodingKey::from_ed_pem(&other).unwrap(), &claims("mallory"));
    assert_unauthorized(&app.call("GET", "/v1/usage", Some(&forged), None).await, "other Ed25519 key");
}

async fn set_quota_as(app: &TestApp, token: &str) -> Call {
    app.call("PUT", "/v1/admin/owners/xavier/quota", Some(token), Some(json!({"quota_bytes": 7}))).await
}

#[tokio::test]
async fn scope_scp_and_scopes_claims_all_grant_admin() {
    let app = TestApp::spawn().await;
    let exp = now() + 3600;
    for claims in [
        json!({"sub": "root", "exp": exp, "scope": "read broker:admin write"}),
        json!({"sub": "root", "exp": exp, "scp": ["read", "broker:admin"]}),
        json!({"sub": "root", "exp": exp, "scopes": ["broker:admin"]}),
    ] {
        let c = set_quota_as(&app, &app.token_with(claims.clone())).await;
        assert_eq!(c.status, 200, "{claims}: {:#}", c.body);
        assert_eq!(c.body["quota_bytes"], 7);
    }
    for claims in [
        json!({"sub": "root", "exp": exp}),
        json!({"sub": "root", "exp": exp, "scope": "broker:administrator broker"}),
        json!({"sub": "root", "exp": exp, "scp": ["read"]}),
    ] {
        set_quota_as(&app, &app.token_with(claims)).await.assert_error(403, "forbidden");
    }
}

#[tokio::test]
async fn a_custom_admin_scope_replaces_broker_admin() {
    let app = TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(|s| s.admin_scope = Some("media:root".into()))),
        ..Default::default()
    })
    .await;
    let custom = app.token_with(json!({"sub": "root", "exp": now() + 3600, "scope": "media:root"}));
    assert_eq!(set_quota_as(&app, &custom).await.status, 200);
    set_quota_as(&app, &app.admin_token("root")).await.assert_error(403, "forbidden");
}

#[tokio::test]
async fn an_admin_creates_an_upload_for_another_owner_and_reads_their_usage() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root");
    let mut b = body();
    b["owner"] = json!("bob");
    let c = app.post("/v1/uploads", &admin, b).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    let id: uuid::Uuid = c.body["upload_id"].as_str().unwrap().parse().unwrap();
    assert!(c.body["key"].as_str().unwrap().contains("/bob/"), "{}", c.body["key"]);
    let owner: String = app.db.query_one("select owner from uploads where id = $1", &[&id]).await.unwrap().get(0);
    assert_eq!(owner, "bob");
    assert_eq!(app.usage_row("bob").await, (0, 0, 5, 1));
    assert_eq!(app.usage_row("root").await, (0, 0, 0, 0), "the admin reserved nothing for itself");

    let usage = app.get("/v1/usage?owner=bob", &admin).await;
    assert_eq!(usage.status, 200, "{:#}", usage.body);
    assert_eq!((usage.body["owner"].clone(), usage.body["reserved_bytes"].clone()), (json!("bob"), json!(5)));
    // Bob sees the upload as his own.
    let status = app.get(&format!("/v1/uploads/{id}"), &app.token("bob")).await;
    assert_eq!(status.status, 200, "{:#}", status.body);
}

#[tokio::test]
async fn a_non_admin_acting_for_another_owner_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let mut b = body();
    b["owner"] = json!("bob");
    app.post("/v1/uploads", &alice, b).await.assert_error(403, "forbidden");
    app.get("/v1/usage?owner=bob", &alice).await.assert_error(403, "forbidden");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    assert_eq!(app.usage_row("bob").await, (0, 0, 0, 0));
    // Naming oneself is fine.
    let mut own = body();
    own["owner"] = json!("alice");
    assert_eq!(app.post("/v1/uploads", &alice, own).await.status, 201);
    assert_eq!(app.get("/v1/usage?owner=alice", &alice).await.body["reserved_bytes"], 5);
}

#[tokio::test]
async fn a_non_admin_cannot_set_a_quota() {
    let app = TestApp::spawn().await;
    set_quota_as(&app, &app.token("alice")).await.assert_error(403, "forbidden");
    set_quota_as(&app, &app.token("xavier")).await.assert_error(403, "forbidden");
    let quota: Option<Option<i64>> =
        app.db.query_opt("select quota_bytes from owners where owner = 'xavier'", &[]).await.unwrap().map(|r| r.get(0));
    assert_eq!(quota.flatten(), None, "no quota was written");
}

// Fallback keys for machines without the `openssl` CLI (test keys, never used elsewhere).
const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQghL2weZWAFXXYjmTc
CSUEVFKhTKAjEUr344QdLAaxZ2KhRANCAASWVwG3En+0I1rMQmxayZf8whCI5+6K
X9S35QlE/5x4QzSnXH2GnXPVOxS1/06GIM2KEXgz6+xPcCIhjMcNpXgp
-----END PRIVATE KEY-----
";
const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEllcBtxJ/tCNazEJsWsmX/MIQiOfu
il/Ut+UJRP+ceEM0p1x9hp1z1TsUtf9OhiDNihF4M+vsT3AiIYzHDaV4KQ==
-----END PUBLIC KEY-----
";
const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIABEjPLbZHMKLPiWk/OSKPiVU6NJAV7p1ws2BCFZKiLy
-----END PRIVATE KEY-----
";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAXMfjwcn9V6zuVBDY8rLVbJcwk29wVTM9VRVqbTSln8U=
-----END PUBLIC KEY-----
";
const RSA_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCfD/wo1GXCfPYf
89TtBYdv2ZgnHEuPYZXdhLFiMbFjxUIuBQbv2L27YmmGGxg1qfRbFzuXV1JYPeMM
IIoSTddUUa4OtT2pxGF/xzhNwFYMNFZwrlDkGB3jkUr1U7WVJKue4D/GtxOOqOqJ
HbxFuhn3IHVXFRA8O7hmd+TntbWXnFdX1j2e+u5toAXydv5UbTcOguybhsUon1ZE
Ap7o4PzIgpa1OoYldcexAgiJ9ADRdseYmS4T0EZ+oQ9z+olSPYEIPC7wTWPNsOB3
8gNarDlF+Pz89toNBK5Mn8S+wCOI4lpZ4rJqUDUHrqlwytHbKL7ZREauUKmj4xJo
La+KWQCrAgMBAAECggEAAneEmTvoc09UBqoJBiWgNIBGN2t267uMHKovXhVLNplO
lD9VT870UldAyU9Bdt0ytV7zRT7NDIh/k8Ar1zc7cBe8M7oxdKD5EId0b7BCvvm1
nxXBzc4zi6rEynBvHOfVFlrmYk/G9XilLbwD7K9QMi1f5ICmuc7Rs067HBgM8u1e
VjHEMUhtgyvgDwYbSDIPE8SjQY1rTBFytC8mUsibYzFB/7C/vNwVLRLakCVQIXCi
M5NhB3rpipWegS6SEbv1KmsYNAnNPYnoGZOKM4X1fiNHI+k2oJP2PocwEg2jGggA
CBwotInQ26y2FJhj0wm6lR59G1dgVm+cYydRodYNUQKBgQDLlOZOxKp9OqpLSr68
BHK5h3F9z2kk37P4gO3Tn6xbQVDRi92lHEE1iq6MLIOObVpOBS+GAJkB8CYvYKEl
5ZmehDbJ7JflANutaPPYX4dWBAVFdWlAdfQtdPypz5BbVAvsCww+jjFQFqBokJFc
GpB5kzbfdhzyQLkm1ayCi6ZfBwKBgQDIBJlLEy5kAFZWsD3fzkfYpaqdF+jSYoXr
m1KgSJF6L68AdvOkFNYpSEVFaEAeeuOkitqk1hOl56bUSa8C1M552EgIpU6cr9Sv
nLwiJlMTl5hRrSTJmTu37b5B0AdK9bGKlyBlx/DNmIGSDT2vucF4pJYPnKBnPUuq
Mim69bXEPQKBgBSgUXVJl7x4ZSibuhdym+0QO/9zNEP4JlPXPEFkvCHCzF1uvlYs
Nq8mDelF2U5k5fFhtR7ukJIRssy6DZm5WYcl/icXQYyCOb+oEoypoRyl66LN8owF
Z2fzomXSEd4u9cZEmEj+PyDOKhJuE0wxpNGsiLK7VNN2m0vD+mZ/n6uhAoGBAL0W
u+ShaYXYW8bwLk5aMMm7NCP26n+Z7Ijj+aTVddJRKdwCmCpSGHRGglYvTA6ElpiD
PFgAmeqJqMmgLvc6P0gpE1A5FqxB/YtXXPPbz0YCVllAmjqLxk0HUInfJEXVJ9ah
MFuIPTngJv3vzpVFwoVO8x4nL+zpoZJwgcrhZsjxAoGBAJzJSnaQU785+qHKvz0B
ZqKPWJwCgJb97UD1CSdfZaXnbutHa+1lnHEQ2+Or/Yii+OI6DBDkOfpZ1+emwIAU
2pySzz84vQj+U4RMjXLhBUQeCTBZz1xW512HM3bv7aV4QBN27DrwopegnfhslKSL
qCBfodHu6C7IWyd3n/vFK6/E
-----END PRIVATE KEY-----
";

//! Identity providers through JWKS, against a local key server that counts its fetches:
//! keys of every type verify, rotation needs no restart, the last good keys outlive a
//! provider outage, made-up kids cannot hammer the provider, and wrong issuers, audiences
//! and HS256-with-a-public-key are refused. Also the owner and scope claims.

mod keys;

use jsonwebtoken::{EncodingKey, Header, encode};
use r2_broker::config::Settings;
use serde_json::json;

use crate::support::{Call, TestApp, TestOptions};
use keys::{AUDIENCE, ISSUER, KeyServer, SigningKey, claims};

/// An app whose tokens come from `server` (JWT_JWKS_URL), with `tweak` on top.
async fn app_with(server: &KeyServer, tweak: impl FnOnce(&mut Settings) + 'static) -> TestApp {
    let url = server.url.clone();
    TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(move |s: &mut Settings| {
            s.jwt_jwks_url = Some(url);
            s.jwt_issuer = Some(ISSUER.into());
            s.jwt_audience = Some(AUDIENCE.into());
            tweak(s);
        })),
        ..Default::default()
    })
    .await
}

/// Every unknown kid may refetch: rotation is visible at once, without waiting out a cooldown.
fn no_cooldown(s: &mut Settings) {
    s.jwt_jwks_cooldown = Some("0".into());
}

async fn usage(app: &TestApp, token: &str) -> Call {
    app.get("/v1/usage", token).await
}

fn assert_status(c: &Call, status: u16, case: &str) {
    assert_eq!(c.status.as_u16(), status, "{case}: {:#}", c.body);
}

#[tokio::test]
async fn rsa_ec_and_ed25519_keys_verify_and_a_rotation_needs_no_restart() {
    // Arrange
    let (rsa, ec, ed) = (SigningKey::rsa("rsa-1"), SigningKey::p256("ec-1"), SigningKey::ed25519("ed-1"));
    let server = KeyServer::start(&[&rsa, &ec, &ed]).await;
    let app = app_with(&server, no_cooldown).await;
    assert_eq!(server.fetches(), 1, "one fetch at start");

    // Act / Assert: every key type, no fetch beyond the first
    let old_token = rsa.sign(&claims("alice"));
    for (key, case) in [(&rsa, "RS256"), (&ec, "ES256"), (&ed, "EdDSA")] {
        let token = if case == "RS256" { old_token.clone() } else { key.sign(&claims("alice")) };
        assert_status(&usage(&app, &token).await, 200, case);
    }
    assert_eq!(server.fetches(), 1, "known kids need no fetch");

    // The provider rotates: rsa-2 in, rsa-1 out.
    let rsa2 = SigningKey::rsa("rsa-2");
    server.serve(&[&ec, &ed, &rsa2]);
    assert_status(&usage(&app, &rsa2.sign(&claims("alice"))).await, 200, "the new kid");
    assert_eq!(server.fetches(), 2, "the unknown kid fetched the set once");
    // The old token verified before (and sits in the token cache): refused now.
    let c = usage(&app, &old_token).await;
    c.assert_error(401, "unauthorized");
    assert_status(&usage(&app, &rsa.sign(&claims("bob"))).await, 401, "a fresh token of the removed key");
}

#[tokio::test]
async fn while_the_provider_is_down_the_last_good_keys_keep_working() {
    // Arrange
    let key = SigningKey::p256("k1");
    let server = KeyServer::start(&[&key]).await;
    let app = app_with(&server, no_cooldown).await;
    server.go_down();

    // Act: a kid nobody knows makes the broker ask the provider, which fails.
    let c = usage(&app, &key.sign_as("k-new", &claims("alice"))).await;

    // Assert: 503 (the token may be good), the failed refresh emptied nothing.
    c.assert_error(503, "unavailable");
    assert!(c.headers.get("retry-after").is_some());
    assert_eq!(server.fetches(), 2, "start + the failed refresh");
    assert_status(&usage(&app, &key.sign(&claims("bob"))).await, 200, "a fresh token of the cached key");

    // The provider is back with a new key.
    let k2 = SigningKey::ed25519("k2");
    server.serve(&[&key, &k2]);
    assert_status(&usage(&app, &k2.sign(&claims("carol"))).await, 200, "after the outage");
}

#[tokio::test]
async fn a_flood_of_made_up_kids_fetches_at_most_once_per_cooldown() {
    // Arrange: the default cooldown (30 s), so the fetch at start is the last for a while.
    let key = SigningKey::p256("real");
    let server = KeyServer::start(&[&key]).await;
    let app = app_with(&server, |_| {}).await;

    // Act: 64 tokens at once, each with its own random kid.
    let calls = (0..64).map(|_| {
        let token = key.sign_as(&uuid::Uuid::new_v4().to_string(), &claims("mallory"));
        let app = &app;
        async move { usage(app, &token).await }
    });
    let answers = futures_util::future::join_all(calls).await;

    // Assert
    for c in &answers {
        c.assert_error(401, "unauthorized");
    }
    assert!(server.fetches() <= 2, "{} fetches for 64 made-up kids", server.fetches());
    assert_status(&usage(&app, &key.sign(&claims("alice"))).await, 200, "the real kid still works");
}

#[tokio::test]
async fn a_wrong_issuer_audience_algorithm_or_missing_kid_is_refused() {
    // Arrange
    let rsa = SigningKey::rsa("rsa-1");
    let server = KeyServer::start(&[&rsa]).await;
    let app = app_with(&server, |_| {}).await;
    let mut wrong_iss = claims("alice");
    wrong_iss["iss"] = json!("https://evil.example/");
    let mut wrong_aud = claims("alice");
    wrong_aud["aud"] = json!("other-api");
    // HS256 keyed with the RSA JWK's public modulus, naming the RSA kid.
    let public = rsa.jwk["n"].as_str().unwrap().as_bytes().to_vec();
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let hs256 = encode(&header, &claims("alice"), &EncodingKey::from_secret(&public)).unwrap();
    let no_kid = rsa.sign_without_kid(&claims("alice"));

    // Act / Assert
    assert_status(&usage(&app, &rsa.sign(&claims("alice"))).await, 200, "the good token");
    for (token, case) in [
        (rsa.sign(&wrong_iss), "wrong iss"),
        (rsa.sign(&wrong_aud), "wrong aud"),
        (hs256, "HS256 naming an RSA kid"),
        (no_kid, "no kid"),
    ] {
        let c = usage(&app, &token).await;
        assert_eq!(c.status, 401, "{case}: {:#}", c.body);
        c.assert_error(401, "unauthorized");
    }
}

#[tokio::test]
async fn the_owner_and_scope_claims_are_the_configured_ones() {
    // Arrange: a team shares one quota; Auth0-style `permissions` grant admin.
    let key = SigningKey::rsa("k");
    let server = KeyServer::start(&[&key]).await;
    let app = app_with(&server, |s| {
        s.jwt_owner_claim = Some("org_id".into());
        s.jwt_scope_claim = Some("permissions".into());
    })
    .await;
    let with = |extra: serde_json::Value| {
        let mut c = claims("user_1");
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        key.sign(&c)
    };
    let body = json!({"filename": "a.txt", "content_type": "text/plain", "size": 5});

    // Act
    let created = app.post("/v1/uploads", &with(json!({"org_id": "org_9"})), body.clone()).await;

    // Assert: the row belongs to the org, not the user.
    assert_status(&created, 201, "create");
    let id: uuid::Uuid = created.body["upload_id"].as_str().unwrap().parse().unwrap();
    let row = app.db.query_one("select owner from uploads where id = $1", &[&id]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "org_9");
    assert_eq!(app.usage_row("org_9").await.2, 5, "the org's reservation");
    assert_eq!(app.usage_row("user_1").await, (0, 0, 0, 0));

    for (token, case) in [
        (with(json!({})), "no org_id"),
        (with(json!({"org_id": 42})), "a number"),
        (with(json!({"org_id": ""})), "empty"),
        (with(json!({"org_id": "a".repeat(256)})), "256 bytes"),
        (with(json!({"org_id": "a\u{0}b"})), "U+0000"),
    ] {
        let c = app.post("/v1/uploads", &token, body.clone()).await;
        assert_eq!(c.status, 401, "{case}: {:#}", c.body);
        c.assert_error(401, "unauthorized");
    }
    let member = with(json!({"org_id": "org_9", "scope": "broker:admin"}));
    let admin = with(json!({"org_id": "org_9", "permissions": ["read", "broker:admin"]}));
    usage_for(&app, &member, "org_1").await.assert_error(403, "forbidden");
    assert_status(&usage_for(&app, &admin, "org_1").await, 200, "permissions grant admin");
}

async fn usage_for(app: &TestApp, token: &str, owner: &str) -> Call {
    app.get(&format!("/v1/usage?owner={owner}"), token).await
}

#[tokio::test]
async fn a_jwks_url_that_serves_no_key_set_fails_start_and_an_unreachable_one_does_not() {
    // Arrange
    let server = KeyServer::start(&[]).await;
    server.answer(404, "<html>not here</html>");
    let (url, db_name) = crate::support::db::fresh_database().await;
    let settings = |jwks: String| Settings {
        jwt_jwks_url: Some(jwks),
        jwt_issuer: Some(ISSUER.into()),
        ..crate::support::app::base_settings(&url)
    };

    // Act
    let wrong = r2_broker::Application::build(settings(server.url.clone()).validate().unwrap()).await;
    // A port nobody listens on: the provider is "down" at start.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let down = r2_broker::Application::build(settings(format!("http://{closed}/jwks")).validate().unwrap()).await;

    // Assert
    let err = format!("{:#}", wrong.err().expect("a 404 JWKS fails start"));
    assert!(err.contains("JWT_JWKS_URL") && err.contains("404"), "{err}");
    assert!(down.is_ok(), "an unreachable provider is retried on the first token");
    drop(down);
    crate::support::db::drop_database(db_name);
}

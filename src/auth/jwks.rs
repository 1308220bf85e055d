//! Keys of an identity provider, fetched from its JWKS URL and looked up by `kid`.
//!
//! - The set is kept for the response's `Cache-Control: max-age`, clamped to
//!   [`MIN_MAX_AGE`]..=[`MAX_MAX_AGE`] ([`DEFAULT_MAX_AGE`] without one); past it the next
//!   token of this issuer refreshes it.
//! - A `kid` the set lacks refetches, but at most once per cooldown (`JWT_JWKS_COOLDOWN`)
//!   and concurrent misses wait for the same fetch: a flood of made-up kids costs the
//!   provider one request per cooldown.
//! - A failed fetch is logged and changes nothing: the last good set keeps verifying
//!   while the provider is down. A kid that is unknown *and* could not be looked up
//!   because the provider is down is `503 unavailable` (retry later), not 401: the token
//!   may well be good, and a 401 makes clients throw it away or sign the user out.
//! - Every fetch is bounded by `BROKER_JWKS_TIMEOUT`.
//! - Each key's algorithms come from the key itself (`kty`/`crv`, narrowed by `alg`):
//!   RSA → RS*/PS*, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA. Symmetric (`oct`)
//!   keys and encryption keys are dropped, so an HS256 token can never be checked with a
//!   key from a JWKS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config::JwksIssuer;

pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
/// A key set larger than this is not a key set.
const MAX_BODY: usize = 1 << 20;

/// One verification key of a set and the algorithms a token may name to use it.
pub struct Key {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

struct KeySet {
    keys: HashMap<String, Arc<Key>>,
    /// Bumped by every successful fetch: cached tokens verified with an older set are
    /// verified again, so a key the provider removed stops working.
    generation: u64,
    expires: Instant,
}

#[derive(Default)]
struct Attempts {
    last: Option<Instant>,
    last_failed: bool,
}

/// Why a fetch failed: the provider answered something that is not a key set
/// (misconfiguration) or could not be reached (an outage).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    NotAKeySet(String),
    #[error("{0}")]
    Unreachable(String),
}

pub struct JwksSource {
    pub issuer: JwksIssuer,
    client: reqwest::Client,
    timeout: Duration,
    cooldown: Duration,
    set: RwLock<Arc<KeySet>>,
    /// Held while fetching, so concurrent misses share one fetch.
    refresh: tokio::sync::Mutex<Attempts>,
    /// Fetches finished (ok or not): a waiter that sees it moved knows a fetch happened
    /// while it waited and does not fetch again.
    finished: AtomicU64,
}

/// The outcome of a look-up by kid.
pub enum Lookup {
    Found(Arc<Key>, u64),
    /// The provider's current set has no such key.
    Unknown,
    /// No such key, and the provider could not be asked.
    ProviderDown,
}

impl JwksSource {
    pub fn new(issuer: JwksIssuer, client: reqwest::Client, timeout: Duration, cooldown: Duration) -> Self {
        let empty = KeySet { keys: HashMap::new(), generation: 0, expires: Instant::now() };
        Self {
            issuer,
            client,
            timeout,
            cooldown,
            set: RwLock::new(Arc::new(empty)),
            refresh: Default::default(),
            finished: AtomicU64::new(0),
        }
    }

    fn current(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The generation of the current set (see `KeySet::generation`).
    pub fn generation(&self) -> u64 {
        self.current().generation
    }

    /// The key named `kid`, fetching the set when it is stale or lacks the kid (within
    /// the cooldown).
    pub async fn key(&self, kid: &str) -> Lookup {
        let seen = self.finished.load(Ordering::Acquire);
        let set = self.current();
        if let Some(k) = set.keys.get(kid)
            && Instant::now() < set.expires
        {
            return Lookup::Found(k.clone(), set.generation);
        }
        let mut attempts = self.refresh.lock().await;
        let fetched_meanwhile = self.finished.load(Ordering::Acquire) != seen;
        let cooled = attempts.last.is_none_or(|t| t.elapsed() >= self.cooldown);
        if !fetched_meanwhile && cooled {
            let ok = self.refresh(&mut attempts).await.is_ok();
            attempts.last_failed = !ok;
        }
        let set = self.current();
        match set.keys.get(kid) {
            Some(k) => Lookup::Found(k.clone(), set.generation),
            None if attempts.last_failed => Lookup::ProviderDown,
            None => Lookup::Unknown,
        }
    }

    /// Fetches the set now (at start, and from `key`); a failure is logged and keeps
    /// the set as it was.
    pub async fn refresh_now(&self) -> Result<usize, FetchError> {
        let mut attempts = self.refresh.lock().await;
        let outcome = self.refresh(&mut attempts).await;
        attempts.last_failed = outcome.is_err();
        outcome
    }

    async fn refresh(&self, attempts: &mut Attempts) -> Result<usize, FetchError> {
        attempts.last = Some(Instant::now());
        let outcome = self.fetch().await;
        self.finished.fetch_add(1, Ordering::AcqRel);
        match outcome {
            Ok((keys, max_age)) => {
                let count = keys.len();
                let mut slot = self.set.write().unwrap_or_else(|e| e.into_inner());
                let generation = slot.generation + 1;
                *slot = Arc::new(KeySet { keys, generation, expires: Instant::now() + max_age });
                tracing::debug!(url = %self.issuer.jwks_url, keys = count, ?max_age, "JWKS fetched");
                Ok(count)
            }
            Err(e) => {
                tracing::warn!(url = %self.issuer.jwks_url, error = %e, "JWKS fetch failed; keeping the last good keys");
                Err(e)
            }
        }
    }

    async fn fetch(&self) -> Result<(HashMap<String, Arc<Key>>, Duration), FetchError> {
        let unreachable = |e: reqwest::Error| FetchError::Unreachable(format!("{}: {e}", self.issuer.jwks_url));
        let call = async {
            let response = self.client.get(&self.issuer.jwks_url).send().await.map_err(unreachable)?;
            let status = response.status();
            let max_age = max_age(response.headers().get(http::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()));
            if status.is_server_error() {
                return Err(FetchError::Unreachable(format!("{} answered {status}", self.issuer.jwks_url)));
            }
            if !status.is_success() {
                return Err(FetchError::NotAKeySet(format!("{} answered {status}", self.issuer.jwks_url)));
            }
            if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
                return Err(FetchError::NotAKeySet("the key set is over 1 MiB".into()));
            }
            let body = response.bytes().await.map_err(unreachable)?;
            Ok((parse_set(&body)?, max_age))
        };
        tokio::time::timeout(self.timeout, call).await.unwrap_or_else(|_| {
            Err(FetchError::Unreachable(format!("{}: no answer within {:?}", self.issuer.jwks_url, self.timeout)))
        })
    }
}

/// The usable keys of a JWKS document. Keys one by one: a provider may publish keys of
/// kinds we do not know (or encryption keys) next to its signing keys.
pub fn parse_set(body: &[u8]) -> Result<HashMap<String, Arc<Key>>, FetchError> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    if body.len() > MAX_BODY {
        return Err(FetchError::NotAKeySet("the key set is over 1 MiB".into()));
    }
    let doc: Doc = serde_json::from_slice(body)
        .map_err(|e| FetchError::NotAKeySet(format!("not a JWK set ({{\"keys\": [...]}}): {e}")))?;
    let mut keys = HashMap::new();
    for value in doc.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if let Some(key) = usable(&jwk) {
            keys.insert(kid, Arc::new(key));
        }
    }
    if keys.is_empty() {
        return Err(FetchError::NotAKeySet(
            "the set has no RSA, P-256, P-384 or Ed25519 signing key with a kid".into(),
        ));
    }
    Ok(keys)
}

/// The key and its algorithms, from its type and curve; `alg`, when given, narrows them
/// and must agree with the type.
fn usable(jwk: &Jwk) -> Option<Key> {
    use Algorithm::*;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![EdDSA],
        // `oct` (HS*) never: a JWKS is public.
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => family,
        Some(alg) => {
            let alg: Algorithm = alg.to_string().parse().ok()?;
            if !family.contains(&alg) {
                return None;
            }
            vec![alg]
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { key, algorithms })
}

/// How long a response may be kept, from its `Cache-Control`, within the bounds.
pub fn max_age(cache_control: Option<&str>) -> Duration {
    let Some(value) = cache_control else { return DEFAULT_MAX_AGE };
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return MIN_MAX_AGE;
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            age = secs.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age.map_or(DEFAULT_MAX_AGE, |a| a.clamp(MIN_MAX_AGE, MAX_MAX_AGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_follows_cache_control_within_bounds() {
        assert_eq!(max_age(None), DEFAULT_MAX_AGE);
        assert_eq!(max_age(Some("public, max-age=3600, must-revalidate")), Duration::from_secs(3600));
        assert_eq!(max_age(Some("max-age=5")), MIN_MAX_AGE);
        assert_eq!(max_age(Some("max-age=99999999")), MAX_MAX_AGE);
        assert_eq!(max_age(Some("no-store")), MIN_MAX_AGE);
        assert_eq!(max_age(Some("public")), DEFAULT_MAX_AGE);
        assert_eq!(max_age(Some("max-age=soon")), DEFAULT_MAX_AGE);
    }

    const EC_JWK: &str = r#"{"kty": "EC", "kid": "sig", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    /// A key server on port 0 answering every request with one key; returns its URL and
    /// the count of requests answered.
    async fn key_server() -> (String, Arc<AtomicU64>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let body = format!(r#"{{"keys": [{EC_JWK}]}}"#);
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = conn.write_all(format!("{head}{body}").as_bytes()).await;
            }
        });
        (url, count)
    }

    /// Without a cooldown every miss may fetch, yet misses that arrive while a fetch is
    /// under way wait for it instead of starting their own. `join_all` polls every
    /// look-up once before the first fetch can finish, so all 32 are waiting on it.
    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let (url, fetches) = key_server().await;
        let issuer = JwksIssuer { jwks_url: url, issuer: "i".into(), audience: None, variable: "JWT_JWKS_URL" };
        let source = JwksSource::new(issuer, reqwest::Client::new(), Duration::from_secs(5), Duration::ZERO);

        let lookups = (0..32).map(|i| {
            let source = &source;
            async move { source.key(&format!("made-up-{i}")).await }
        });
        let outcomes = futures_util::future::join_all(lookups).await;

        assert!(outcomes.iter().all(|o| matches!(o, Lookup::Unknown)));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(matches!(source.key("sig").await, Lookup::Found(_, 1)), "the fetched set is kept");
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "a known, fresh kid needs no fetch");
    }

    #[test]
    fn symmetric_encryption_and_unknown_keys_are_dropped() {
        let body = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "alg": "HS256"},
            {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "kid": "sig", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "kid": "mismatch", "alg": "RS256", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "XYZ", "kid": "future"},
        ]});
        let keys = parse_set(body.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["sig"]);
        assert_eq!(keys["sig"].algorithms, [Algorithm::ES256]);
        let only_hmac = serde_json::json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]});
        assert!(matches!(parse_set(only_hmac.to_string().as_bytes()), Err(FetchError::NotAKeySet(_))));
        assert!(matches!(parse_set(b"<html>"), Err(FetchError::NotAKeySet(_))));
    }
}

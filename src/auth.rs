//! Authentication, framework-free. `Verifier` checks JWTs with jsonwebtoken and names the
//! `Caller`; acting for another owner is one method (`owner_for`) rather than an `if` per
//! handler. Reading the token off a request is `http::caller`.
//!
//! Keys: HS256 with `JWT_SECRET`, the PEM key's family with `JWT_PUBLIC_KEY_FILE`, and the
//! keys of each JWKS provider (`jwks`), picked by the token's `iss` and `kid`. A token's
//! header names the algorithm and only a key of that family checks it, so an RS256 token
//! can never be checked as HS256 with a public key as secret, an HS* token never meets a
//! JWKS key, and `alg: none` does not parse.
//!
//! The owner is the claim `JWT_OWNER_CLAIM` names (default `sub`): a JSON string, valid
//! by `owner::is_valid`. A number is refused rather than turned into text: `1`, `1.0` and
//! `1e0` would be one owner or three depending on how it was printed. Scopes are read
//! from the claims `JWT_SCOPE_CLAIM` lists, each a space-separated string or an array.

mod cache;
pub mod jwks;

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, decode, decode_header};
use serde_json::{Map, Value};

use crate::config::{JwtConfig, JwtKey};
use crate::error::Error;
use crate::owner;

type Claims = Map<String, Value>;

struct KeyCheck {
    key: DecodingKey,
    validation: Validation,
}

pub struct Verifier {
    hmac: Option<KeyCheck>,
    public: Option<KeyCheck>,
    jwks: Vec<jwks::JwksSource>,
    owner_claim: String,
    scope_claims: Vec<String>,
    admin_scope: String,
    cache: cache::TokenCache,
}

fn validation(algorithms: &[Algorithm], issuer: Option<&str>, audience: Option<&str>) -> Validation {
    let mut v = Validation::new(algorithms[0]);
    v.algorithms = algorithms.to_vec();
    v.leeway = 0;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp"]);
    if let Some(iss) = issuer {
        v.set_issuer(&[iss]);
        v.required_spec_claims.insert("iss".into());
    }
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            v.required_spec_claims.insert("aud".into());
        }
        None => v.validate_aud = false,
    }
    v
}

fn invalid() -> Error {
    Error::Unauthorized("invalid or expired token")
}

impl Verifier {
    pub fn new(cfg: &JwtConfig) -> Self {
        let check = |k: &JwtKey| KeyCheck {
            key: k.key.clone(),
            validation: validation(&k.algorithms, cfg.issuer.as_deref(), cfg.audience.as_deref()),
        };
        let jwks = match cfg.jwks.is_empty() {
            true => Vec::new(),
            false => {
                // Timeouts are per fetch (`JwksSource::fetch`); the client only bounds connecting.
                let client = reqwest::Client::builder()
                    .connect_timeout(cfg.jwks_timeout)
                    .user_agent(concat!("r2-broker/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .unwrap_or_default();
                let source = |i: &crate::config::JwksIssuer| {
                    jwks::JwksSource::new(i.clone(), client.clone(), cfg.jwks_timeout, cfg.jwks_cooldown)
                };
                cfg.jwks.iter().map(source).collect()
            }
        };
        Self {
            hmac: cfg.hmac.as_ref().map(check),
            public: cfg.public.as_ref().map(check),
            jwks,
            owner_claim: cfg.owner_claim.clone(),
            scope_claims: cfg.scope_claims.clone(),
            admin_scope: cfg.admin_scope.clone(),
            cache: Default::default(),
        }
    }

    /// Fetches every provider's keys once, at start. A provider that answers with
    /// something other than a key set (a 4xx, HTML, no usable key) is a wrong URL and
    /// fails start naming its variable; one that cannot be reached (refused, timeout, 5xx)
    /// is logged and the broker starts anyway — its keys are fetched on the first token —
    /// so an identity-provider outage during a deploy does not become a broker outage.
    pub async fn start(&self) -> anyhow::Result<()> {
        for source in &self.jwks {
            let i = &source.issuer;
            match source.refresh_now().await {
                Ok(n) => tracing::info!(issuer = %i.issuer, url = %i.jwks_url, keys = n, "JWKS loaded"),
                Err(jwks::FetchError::NotAKeySet(e)) => {
                    anyhow::bail!("{}: {} is not a JWKS: {e}", i.variable, i.jwks_url)
                }
                Err(jwks::FetchError::Unreachable(e)) => {
                    tracing::warn!(issuer = %i.issuer, error = %e, "JWKS unreachable at start; retrying on the first token")
                }
            }
        }
        Ok(())
    }

    /// Checks a bearer token and returns the caller it names.
    pub async fn verify(&self, token: &str) -> Result<Caller, Error> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some((caller, tag)) = self.cache.get(token, now)
            && tag.is_none_or(|(i, generation)| self.jwks[i].generation() == generation)
        {
            return Ok(caller);
        }
        let header = decode_header(token).map_err(|_| invalid())?;
        let (claims, tag) = match self.jwks_source(token, &header) {
            Some(i) => {
                let (claims, generation) = self.verify_jwks(&self.jwks[i], token, &header).await?;
                (claims, Some((i, generation)))
            }
            None => {
                let check = [&self.hmac, &self.public]
                    .into_iter()
                    .flatten()
                    .find(|c| c.validation.algorithms.contains(&header.alg))
                    .ok_or_else(invalid)?;
                (decode::<Claims>(token, &check.key, &check.validation).map_err(|_| invalid())?.claims, None)
            }
        };
        let caller = self.caller(&claims)?;
        let exp = claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0) as u64;
        self.cache.insert(token, &caller, exp, tag);
        Ok(caller)
    }

    /// The JWKS provider whose `iss` the (not yet verified) token names, for an asymmetric
    /// algorithm only; `None` sends it to the static keys.
    fn jwks_source(&self, token: &str, header: &Header) -> Option<usize> {
        #[derive(serde::Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        if self.jwks.is_empty() || matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return None;
        }
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<Iss>(token).ok()?.iss?;
        self.jwks.iter().position(|s| s.issuer.issuer == iss)
    }

    async fn verify_jwks(
        &self,
        source: &jwks::JwksSource,
        token: &str,
        header: &Header,
    ) -> Result<(Claims, u64), Error> {
        let kid = header.kid.as_deref().ok_or(Error::Unauthorized("token from a JWKS issuer lacks a kid"))?;
        let (key, generation) = match source.key(kid).await {
            jwks::Lookup::Found(key, generation) => (key, generation),
            jwks::Lookup::Unknown => return Err(invalid()),
            jwks::Lookup::ProviderDown => {
                return Err(Error::unavailable(anyhow::anyhow!(
                    "kid {kid:?} unknown and the JWKS of {} could not be fetched",
                    source.issuer.issuer
                )));
            }
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(invalid());
        }
        let v = validation(&[header.alg], Some(&source.issuer.issuer), source.issuer.audience.as_deref());
        Ok((decode::<Claims>(token, &key.key, &v).map_err(|_| invalid())?.claims, generation))
    }

    fn caller(&self, claims: &Claims) -> Result<Caller, Error> {
        let owner = match claims.get(&self.owner_claim) {
            Some(Value::String(s)) if owner::is_valid(s) => s.clone(),
            Some(Value::String(_)) => {
                return Err(Error::Unauthorized("token owner claim must be 1 to 255 bytes, without U+0000"));
            }
            Some(_) => return Err(Error::Unauthorized("token owner claim (JWT_OWNER_CLAIM) must be a string")),
            None => return Err(Error::Unauthorized("token lacks the owner claim (JWT_OWNER_CLAIM)")),
        };
        let admin = self.scope_claims.iter().filter_map(|c| claims.get(c)).any(|v| match v {
            Value::String(s) => s.split_whitespace().any(|s| s == self.admin_scope),
            Value::Array(items) => items.iter().any(|i| i.as_str() == Some(&self.admin_scope)),
            _ => false,
        });
        Ok(Caller { owner, admin })
    }
}

/// An authenticated caller: the token's owner claim and whether it holds the admin scope.
#[derive(Debug, Clone)]
pub struct Caller {
    pub owner: String,
    pub admin: bool,
}

impl Caller {
    /// The owner to act for: the caller's own, or (admin scope only) the one requested.
    pub fn owner_for(&self, requested: Option<&str>) -> Result<String, Error> {
        match requested {
            None => Ok(self.owner.clone()),
            Some(o) if !owner::is_valid(o) => owner::check(o).map(|()| o.to_owned()),
            Some(o) if self.admin || o == self.owner => Ok(o.to_owned()),
            Some(_) => Err(Error::Forbidden("acting for another owner needs the admin scope")),
        }
    }

    pub fn require_admin(&self) -> Result<(), Error> {
        if self.admin { Ok(()) } else { Err(Error::Forbidden("this action needs the admin scope")) }
    }
}

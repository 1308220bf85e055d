//! Authentication, framework-free. `Verifier` checks JWTs with jsonwebtoken and names the
//! `Caller`; acting for another owner is one method (`owner_for`) rather than an `if` per
//! handler. Reading the token off a request is `http::caller`.
//!
//! The accepted algorithms follow the configured keys (`config::JwtKey`: HS256 with
//! `JWT_SECRET`, the PEM key's family with `JWT_PUBLIC_KEY_FILE`). A token's header picks
//! between them, so an RS256 token can never be checked as HS256 with the public key as
//! secret, and `alg: none` does not parse.

mod cache;

use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::config::{JwtConfig, JwtKey};
use crate::error::Error;
use crate::owner;

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

impl ScopeClaim {
    fn into_scopes(self) -> Vec<String> {
        match self {
            Self::Text(s) => s.split_whitespace().map(str::to_owned).collect(),
            Self::List(v) => v,
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    scope: Option<ScopeClaim>,
    #[serde(default)]
    scp: Option<ScopeClaim>,
    #[serde(default)]
    scopes: Option<ScopeClaim>,
}

struct KeyCheck {
    key: DecodingKey,
    validation: Validation,
}

pub struct Verifier {
    hmac: Option<KeyCheck>,
    public: Option<KeyCheck>,
    admin_scope: String,
    cache: cache::TokenCache,
}

fn validation(key: &JwtKey, cfg: &JwtConfig) -> Validation {
    let mut v = Validation::new(key.algorithms[0]);
    v.algorithms = key.algorithms.clone();
    v.leeway = 0;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "sub"]);
    if let Some(iss) = &cfg.issuer {
        v.set_issuer(&[iss]);
        v.required_spec_claims.insert("iss".into());
    }
    match &cfg.audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            v.required_spec_claims.insert("aud".into());
        }
        None => v.validate_aud = false,
    }
    v
}

impl Verifier {
    pub fn new(cfg: &JwtConfig) -> Self {
        let check = |k: &JwtKey| KeyCheck { key: k.key.clone(), validation: validation(k, cfg) };
        Self {
            hmac: cfg.hmac.as_ref().map(check),
            public: cfg.public.as_ref().map(check),
            admin_scope: cfg.admin_scope.clone(),
            cache: Default::default(),
        }
    }

    /// Checks a bearer token and returns the caller it names.
    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(caller) = self.cache.get(token, now) {
            return Ok(caller);
        }
        let invalid = || Error::Unauthorized("invalid or expired token");
        let alg = decode_header(token).map_err(|_| invalid())?.alg;
        let check = [&self.hmac, &self.public]
            .into_iter()
            .flatten()
            .find(|c| c.validation.algorithms.contains(&alg))
            .ok_or_else(invalid)?;
        let claims = decode::<Claims>(token, &check.key, &check.validation).map_err(|_| invalid())?.claims;
        if !owner::is_valid(&claims.sub) {
            return Err(Error::Unauthorized("token sub must be 1 to 255 bytes, without U+0000"));
        }
        let scopes: Vec<String> =
            [claims.scope, claims.scp, claims.scopes].into_iter().flatten().flat_map(ScopeClaim::into_scopes).collect();
        let admin = scopes.contains(&self.admin_scope);
        let caller = Caller { owner: claims.sub, admin };
        self.cache.insert(token, &caller, claims.exp);
        Ok(caller)
    }
}

/// An authenticated caller: the token's `sub` and whether it holds the admin scope.
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

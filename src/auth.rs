//! Authentication. `Verifier` checks JWTs with jsonwebtoken; `Caller` is the actix
//! extractor, so a handler that takes a `Caller` cannot run without a valid token, and
//! acting for another owner is one method (`owner_for`) rather than an `if` per handler.
//!
//! The accepted algorithms follow the configured keys: HS256 with `JWT_SECRET`, the family
//! of the PEM key (RSA: RS*/PS*, EC: ES256/ES384, Ed25519: EdDSA) with
//! `JWT_PUBLIC_KEY_FILE`. A token's header picks between them, so an RS256 token can never
//! be checked as HS256 with the public key as secret, and `alg: none` does not parse.

mod cache;

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::config::JwtConfig;
use crate::error::Error;
use crate::state::AppState;

/// Owners (`sub`) are at most 255 bytes (API.md).
pub const MAX_OWNER_LEN: usize = 255;

/// Whether `owner` can name an owner: 1 to 255 bytes, and no U+0000 (PostgreSQL's `text`
/// cannot hold it). The one rule for a token's `sub`, a body's `owner`, `?owner=` and the
/// admin path.
pub fn is_valid_owner(owner: &str) -> bool {
    (1..=MAX_OWNER_LEN).contains(&owner.len()) && !owner.contains('\0')
}

/// `400 invalid_request` unless `owner` is valid.
pub fn check_owner(owner: &str) -> Result<(), Error> {
    if is_valid_owner(owner) { Ok(()) } else { Err(Error::invalid("owner: must be 1 to 255 bytes, without U+0000")) }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("JWT_PUBLIC_KEY_FILE is not a PEM RSA, EC or Ed25519 public key")]
    BadPublicKey,
}

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

fn validation(algorithms: Vec<Algorithm>, cfg: &JwtConfig) -> Validation {
    let mut v = Validation::new(algorithms[0]);
    v.algorithms = algorithms;
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
    pub fn new(cfg: &JwtConfig) -> Result<Self, AuthError> {
        let hmac = cfg.secret.as_ref().map(|s| KeyCheck {
            key: DecodingKey::from_secret(s.expose_secret().as_bytes()),
            validation: validation(vec![Algorithm::HS256], cfg),
        });
        let public = match &cfg.public_key_pem {
            None => None,
            Some(pem) => {
                let (key, algs) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
                    (
                        k,
                        vec![
                            Algorithm::RS256,
                            Algorithm::RS384,
                            Algorithm::RS512,
                            Algorithm::PS256,
                            Algorithm::PS384,
                            Algorithm::PS512,
                        ],
                    )
                } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
                    (k, vec![Algorithm::ES256, Algorithm::ES384])
                } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
                    (k, vec![Algorithm::EdDSA])
                } else {
                    return Err(AuthError::BadPublicKey);
                };
                Some(KeyCheck { key, validation: validation(algs, cfg) })
            }
        };
        Ok(Self { hmac, public, admin_scope: cfg.admin_scope.clone(), cache: Default::default() })
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
        if !is_valid_owner(&claims.sub) {
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
            Some(o) if !is_valid_owner(o) => check_owner(o).map(|()| o.to_owned()),
            Some(o) if self.admin || o == self.owner => Ok(o.to_owned()),
            Some(_) => Err(Error::Forbidden("acting for another owner needs the admin scope")),
        }
    }

    pub fn require_admin(&self) -> Result<(), Error> {
        if self.admin { Ok(()) } else { Err(Error::Forbidden("this action needs the admin scope")) }
    }
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Caller, Error> {
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| anyhow::anyhow!("AppState missing"))?;
    let value =
        req.headers().get(header::AUTHORIZATION).ok_or(Error::Unauthorized("missing Authorization: Bearer token"))?;
    let value = value.to_str().map_err(|_| Error::Unauthorized("malformed Authorization header"))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(Error::Unauthorized("Authorization must be `Bearer <token>`")),
    };
    let caller = state.verifier.verify(token)?;
    state.rate_limit(&caller.owner)?;
    Ok(caller)
}

//! JWT settings: key material decoded once at start (a bad PEM fails validation naming
//! `JWT_PUBLIC_KEY_FILE`), the JWKS providers, and which claims name the owner and the
//! scopes. `auth::Verifier` takes them as they are.

use jsonwebtoken::{Algorithm, DecodingKey};

use super::secrets::secret;
use super::{ConfigError, bad, seconds};

/// A verification key and the algorithms a token's header may name to be checked with it.
/// Each key accepts only its own family, so an RS256 token can never be checked as HS256
/// with the public key as secret.
#[derive(Debug, Clone)]
pub struct JwtKey {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

impl JwtKey {
    /// `JWT_SECRET`: HS256.
    pub fn hs256(secret: &[u8]) -> Self {
        Self { key: DecodingKey::from_secret(secret), algorithms: vec![Algorithm::HS256] }
    }

    /// `JWT_PUBLIC_KEY_FILE`: the family of the PEM key (RSA: RS*/PS*, EC: ES256/ES384,
    /// Ed25519: EdDSA); `None` when it is none of them.
    pub fn from_public_pem(pem: &[u8]) -> Option<Self> {
        use Algorithm::*;
        let (key, algorithms) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (k, vec![RS256, RS384, RS512, PS256, PS384, PS512])
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (k, vec![ES256, ES384])
        } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (k, vec![EdDSA])
        } else {
            return None;
        };
        Some(Self { key, algorithms })
    }
}

/// One identity provider whose keys come from a JWKS URL (`JWT_JWKS_URL` with
/// `JWT_ISSUER` / `JWT_AUDIENCE`, or an entry of `JWT_ISSUERS`). A token's `iss` picks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksIssuer {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: Option<String>,
    /// The variable it came from, for the start-up check's message.
    pub variable: &'static str,
}

#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    /// From `JWT_SECRET`.
    pub hmac: Option<JwtKey>,
    /// From `JWT_PUBLIC_KEY_FILE`.
    pub public: Option<JwtKey>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub admin_scope: String,
    /// Identity providers verified through their JWKS.
    pub jwks: Vec<JwksIssuer>,
    /// The claim naming the owner (`JWT_OWNER_CLAIM`) [default: sub].
    pub owner_claim: String,
    /// The claims holding scopes (`JWT_SCOPE_CLAIM`) [default: scope, scp, scopes].
    pub scope_claims: Vec<String>,
    /// Bound of one JWKS fetch (`BROKER_JWKS_TIMEOUT`).
    pub jwks_timeout: std::time::Duration,
    /// Least time between two fetches for unknown kids (`JWT_JWKS_COOLDOWN`).
    pub jwks_cooldown: std::time::Duration,
}

/// `JWT_*`: the static keys, the JWKS providers and the claims read from a token.
pub(super) fn validate(s: &super::Settings) -> Result<JwtConfig, ConfigError> {
    let secret = secret(&s.jwt_secret, &s.jwt_secret_file, "JWT_SECRET", "JWT_SECRET_FILE")?;
    if let Some(v) = &secret
        && v.len() < 32
    {
        let variable = if s.jwt_secret_file.is_some() { "JWT_SECRET_FILE" } else { "JWT_SECRET" };
        return Err(bad(variable, "must be at least 32 bytes (HS256 needs a strong key)"));
    }
    let public = match &s.jwt_public_key_file {
        None => None,
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| bad("JWT_PUBLIC_KEY_FILE", format!("cannot read {}: {e}", path.display())))?;
            let key = JwtKey::from_public_pem(&pem).ok_or_else(|| {
                bad("JWT_PUBLIC_KEY_FILE", "JWT_PUBLIC_KEY_FILE is not a PEM RSA, EC or Ed25519 public key")
            })?;
            Some(key)
        }
    };
    let nonempty = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let issuer = nonempty(&s.jwt_issuer);
    let audience = nonempty(&s.jwt_audience);

    let mut jwks = Vec::new();
    if let Some(url) = nonempty(&s.jwt_jwks_url) {
        let issuer = issuer.clone().ok_or_else(|| {
            bad("JWT_JWKS_URL", "needs JWT_ISSUER (the `iss` of its tokens), or use JWT_ISSUERS entries")
        })?;
        jwks.push(JwksIssuer {
            jwks_url: jwks_url(&url, "JWT_JWKS_URL")?,
            issuer,
            audience: audience.clone(),
            variable: "JWT_JWKS_URL",
        });
    }
    if let Some(list) = nonempty(&s.jwt_issuers) {
        for entry in list.split([';', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = issuer_entry(entry)?;
            if jwks.iter().any(|j: &JwksIssuer| j.issuer == parsed.issuer) {
                return Err(bad("JWT_ISSUERS", format!("issuer {:?} is given twice", parsed.issuer)));
            }
            jwks.push(parsed);
        }
    }
    if secret.is_none() && public.is_none() && jwks.is_empty() {
        return Err(bad(
            "JWT_SECRET",
            "at least one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL and JWT_ISSUERS is required",
        ));
    }

    let owner_claim = nonempty(&s.jwt_owner_claim).unwrap_or_else(|| "sub".into());
    let scope_claims = match nonempty(&s.jwt_scope_claim) {
        None => vec!["scope".into(), "scp".into(), "scopes".into()],
        Some(list) => list.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect(),
    };
    if scope_claims.is_empty() {
        return Err(bad("JWT_SCOPE_CLAIM", "must name at least one claim"));
    }
    Ok(JwtConfig {
        hmac: secret.map(|s| JwtKey::hs256(s.as_bytes())),
        public,
        issuer,
        audience,
        admin_scope: nonempty(&s.admin_scope).unwrap_or_else(|| "broker:admin".into()),
        jwks,
        owner_claim,
        scope_claims,
        jwks_timeout: seconds(&s.jwks_timeout, "BROKER_JWKS_TIMEOUT", 5.0, 0.1..=60.0)?,
        jwks_cooldown: seconds(&s.jwt_jwks_cooldown, "JWT_JWKS_COOLDOWN", 30.0, 0.0..=3600.0)?,
    })
}

/// `iss=<issuer>,jwks=<url>[,aud=<audience>]`.
fn issuer_entry(entry: &str) -> Result<JwksIssuer, ConfigError> {
    let (mut iss, mut url, mut aud) = (None, None, None);
    for pair in entry.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| bad("JWT_ISSUERS", format!("{pair:?} is not name=value (iss=, jwks=, aud=)")))?;
        let slot = match name.trim() {
            "iss" => &mut iss,
            "jwks" => &mut url,
            "aud" => &mut aud,
            other => return Err(bad("JWT_ISSUERS", format!("unknown field {other:?} (iss, jwks, aud)"))),
        };
        if slot.replace(value.trim().to_owned()).is_some() {
            return Err(bad("JWT_ISSUERS", format!("{name} is given twice in {entry:?}")));
        }
    }
    let issuer = iss.filter(|v| !v.is_empty()).ok_or_else(|| bad("JWT_ISSUERS", format!("{entry:?} lacks iss=")))?;
    let url = url.ok_or_else(|| bad("JWT_ISSUERS", format!("{entry:?} lacks jwks=")))?;
    Ok(JwksIssuer {
        jwks_url: jwks_url(&url, "JWT_ISSUERS")?,
        issuer,
        audience: aud.filter(|v| !v.is_empty()),
        variable: "JWT_ISSUERS",
    })
}

/// An https URL; plain http only to this machine (a test's or a sidecar's key server):
/// keys fetched in the clear could be swapped on the way.
fn jwks_url(url: &str, variable: &'static str) -> Result<String, ConfigError> {
    let parsed: http::Uri = url.parse().map_err(|_| bad(variable, format!("{url:?} is not a URL")))?;
    let host = parsed.host().unwrap_or("");
    let loopback = ["localhost", "127.0.0.1", "[::1]", "::1"].contains(&host);
    match parsed.scheme_str() {
        Some("https") if !host.is_empty() => Ok(url.to_owned()),
        Some("http") if loopback => Ok(url.to_owned()),
        Some("http") => Err(bad(variable, format!("{url:?}: keys must be fetched over https"))),
        _ => Err(bad(variable, format!("{url:?} must be an https:// URL"))),
    }
}

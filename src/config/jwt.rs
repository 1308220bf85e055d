//! JWT key material, decoded once at start: a bad PEM fails validation naming
//! `JWT_PUBLIC_KEY_FILE`, and `auth::Verifier` takes the keys as they are.

use jsonwebtoken::{Algorithm, DecodingKey};

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

#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// From `JWT_SECRET`.
    pub hmac: Option<JwtKey>,
    /// From `JWT_PUBLIC_KEY_FILE`.
    pub public: Option<JwtKey>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub admin_scope: String,
}

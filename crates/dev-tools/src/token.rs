//! HS256 tokens signed with the dev JWT secret, shaped like the ones a real issuer hands out.

use std::time::Duration;

/// The claims that depend on how the broker is configured.
#[derive(Debug, Default)]
pub struct Audience {
    /// `iss`, when the broker requires one.
    pub issuer: Option<String>,
    /// `aud`, when the broker requires one.
    pub audience: Option<String>,
    /// The `scope` that grants admin rights, set only on admin tokens.
    pub admin_scope: String,
}

/// A token for `owner` valid for `ttl`, with the admin scope when `admin`.
pub fn mint(secret: &str, owner: &str, ttl: Duration, admin: bool, to: &Audience) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({"sub": owner, "iat": now, "exp": now + i64::try_from(ttl.as_secs())?});
    if let Some(iss) = &to.issuer {
        claims["iss"] = iss.as_str().into();
    }
    if let Some(aud) = &to.audience {
        claims["aud"] = aud.as_str().into();
    }
    if admin {
        claims["scope"] = to.admin_scope.as_str().into();
    }
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)?)
}

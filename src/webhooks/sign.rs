//! The Standard Webhooks signature: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
//! keyed with the base64-decoded part of the `whsec_…` secret. The reference
//! implementation (`standardwebhooks`, the crate its maintainers publish) signs, so what a
//! receiver verifies with the official libraries is exactly what was computed here.

use secrecy::{ExposeSecret, SecretString};

/// The header names (Standard Webhooks, unbranded).
pub const ID: &str = "webhook-id";
pub const TIMESTAMP: &str = "webhook-timestamp";
pub const SIGNATURE: &str = "webhook-signature";

pub struct Signer(standardwebhooks::Webhook);

impl Signer {
    /// From `BROKER_WEBHOOK_SECRET` (validated at start: `whsec_` and base64).
    pub fn new(secret: &SecretString) -> anyhow::Result<Self> {
        let webhook = standardwebhooks::Webhook::new(secret.expose_secret())
            .map_err(|e| anyhow::anyhow!("BROKER_WEBHOOK_SECRET: {e}"))?;
        Ok(Self(webhook))
    }

    /// The `webhook-signature` value for one attempt at `timestamp` (unix seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> anyhow::Result<String> {
        self.0.sign(id, timestamp, body.as_bytes()).map_err(|e| anyhow::anyhow!("signing a webhook: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example (its test vector).
    #[test]
    fn signs_the_specification_example() {
        let signer = Signer::new(&SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signer.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}

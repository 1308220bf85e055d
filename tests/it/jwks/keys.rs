//! Test doubles of an identity provider: key pairs made with aws-lc-rs (no OpenSSL), their
//! JWKs, and a local JWKS server on port 0 that counts its fetches and can be taken down.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const ISSUER: &str = "https://idp.example/";
pub const AUDIENCE: &str = "uploads";

/// A provider's signing key: its private half for tokens, its JWK for the set.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    pub jwk: Value,
}

impl SigningKey {
    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Self {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        Self { kid: kid.into(), alg, encoding, jwk }
    }

    pub fn rsa(kid: &str) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        Self::new(kid, Algorithm::RS256, EncodingKey::from_rsa_der(&pkcs1_of(pkcs8.as_ref())))
    }

    pub fn p256(kid: &str) -> Self {
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap();
        Self::new(kid, Algorithm::ES256, EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref()))
    }

    pub fn ed25519(kid: &str) -> Self {
        let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
        Self::new(kid, Algorithm::EdDSA, EncodingKey::from_ed_der(pair.to_pkcs8v1().unwrap().as_ref()))
    }

    /// A token with this key's kid and algorithm.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    pub fn sign_without_kid(&self, claims: &Value) -> String {
        encode(&Header::new(self.alg), claims, &self.encoding).unwrap()
    }

    /// A token signed by this key but naming another kid.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.into());
        encode(&header, claims, &self.encoding).unwrap()
    }
}

/// jsonwebtoken reads RSA keys as PKCS#1; aws-lc-rs writes PKCS#8 v1, whose last field is
/// the PKCS#1 key: SEQUENCE { INTEGER 0, AlgorithmIdentifier (15 bytes), OCTET STRING }.
fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
    assert_eq!(&pkcs8[..2], [0x30, 0x82], "a 2048-bit key's outer SEQUENCE");
    let rest = &pkcs8[4 + 3 + 15..];
    assert_eq!(&rest[..2], [0x04, 0x82], "the OCTET STRING holding the PKCS#1 key");
    let len = usize::from(rest[2]) << 8 | usize::from(rest[3]);
    rest[4..4 + len].to_vec()
}

/// Claims a JWKS token of `ISSUER` for `AUDIENCE` carries.
pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": crate::support::app::now() + 3600})
}

#[derive(Default)]
struct Served {
    /// The answer's status; 0 until keys are served.
    status: u16,
    body: String,
}

/// A JWKS endpoint at `url`, counting the requests it answered.
pub struct KeyServer {
    pub url: String,
    served: Arc<Mutex<Served>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    pub async fn start(keys: &[&SigningKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        let server = Self { url, served: Default::default(), fetches: Default::default() };
        server.serve(keys);
        let (served, fetches) = (server.served.clone(), server.fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (served, fetches) = (served.clone(), fetches.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let response = {
                        let s = served.lock().unwrap();
                        format!(
                            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncache-control: public, max-age=3600\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                            s.status,
                            s.body.len(),
                            s.body
                        )
                    };
                    let _ = conn.write_all(response.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        server
    }

    /// Serves exactly these keys from now on.
    pub fn serve(&self, keys: &[&SigningKey]) {
        let set = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        self.answer(200, &set.to_string());
    }

    pub fn answer(&self, status: u16, body: &str) {
        let mut s = self.served.lock().unwrap();
        (s.status, s.body) = (status, body.into());
    }

    pub fn go_down(&self) {
        self.answer(503, "");
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

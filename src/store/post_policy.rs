//! S3 POST policy for browser form uploads (`multipart/form-data`), SigV4.
//!
//! The policy pins the exact key, content type, size (`content-length-range` of `size`
//! to `size`) and the `upload-id` metadata; it is signed with the same per-day signing
//! key the [`Presigner`] caches (aws-sigv4's `generate_signing_key`), the signature
//! being aws-sigv4's `calculate_signature` over the base64 policy.
//!
//! Cloudflare R2 has no POST policy support: callers must not offer this method there.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use chrono::{DateTime, Datelike, SecondsFormat};
use serde::Serialize;

use super::presign::{PresignError, Presigner, Stamp, check_expiry, check_header_value, check_key};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// A form upload: `POST url` as `multipart/form-data` with `fields` in this order,
/// then the file itself as the last part, named `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostPolicy {
    pub url: String,
    pub fields: Vec<(String, String)>,
}

/// The policy's conditions, in order: bucket, key, content type, exact size, upload-id
/// metadata, then the signature's algorithm, credential and date.
type Conditions<'a> = (
    BucketCondition<'a>,
    [&'a str; 3],
    [&'a str; 3],
    (&'static str, u64, u64),
    UploadIdCondition<'a>,
    AlgorithmCondition,
    CredentialCondition<'a>,
    DateCondition<'a>,
);

#[derive(Serialize)]
struct PolicyDocument<'a> {
    expiration: &'a str,
    conditions: Conditions<'a>,
}

#[derive(Serialize)]
struct BucketCondition<'a> {
    bucket: &'a str,
}

#[derive(Serialize)]
struct UploadIdCondition<'a> {
    #[serde(rename = "x-amz-meta-upload-id")]
    upload_id: &'a str,
}

#[derive(Serialize)]
struct AlgorithmCondition {
    #[serde(rename = "x-amz-algorithm")]
    algorithm: &'static str,
}

#[derive(Serialize)]
struct CredentialCondition<'a> {
    #[serde(rename = "x-amz-credential")]
    credential: &'a str,
}

#[derive(Serialize)]
struct DateCondition<'a> {
    #[serde(rename = "x-amz-date")]
    date: &'a str,
}

/// The policy's `expiration`, `secs` after the Unix epoch: RFC 3339 UTC with milliseconds
/// (`YYYY-MM-DDTHH:MM:SS.000Z`, the form S3's examples use), with a four-digit year.
fn expiration(secs: u64) -> Result<String, PresignError> {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .filter(|t| t.year() <= 9999)
        .ok_or(PresignError::InvalidTime)?;
    Ok(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Builds a signed POST policy for one object: exact `key`, `content_type` and `size`,
/// the `x-amz-meta-upload-id` metadata, expiring `expires_in` (1 s to 7 days) after `now`.
pub fn post_policy(
    p: &Presigner,
    key: &str,
    content_type: &str,
    size: u64,
    upload_id: &str,
    expires_in: Duration,
    now: SystemTime,
) -> Result<PostPolicy, PresignError> {
    check_key(key)?;
    check_header_value("content-type", content_type)?;
    check_header_value("x-amz-meta-upload-id", upload_id)?;
    let expires = check_expiry(expires_in)?;
    let stamp = Stamp::new(now)?;
    let expiration = expiration(stamp.secs + expires)?;
    let credential = p.credential(&stamp);
    let date = stamp.date_time();

    let doc = PolicyDocument {
        expiration: &expiration,
        conditions: (
            BucketCondition { bucket: p.bucket() },
            ["eq", "$key", key],
            ["eq", "$Content-Type", content_type],
            ("content-length-range", size, size),
            UploadIdCondition { upload_id },
            AlgorithmCondition { algorithm: ALGORITHM },
            CredentialCondition { credential: &credential },
            DateCondition { date },
        ),
    };
    let json = serde_json::to_vec(&doc).expect("a policy document always serialises");
    let policy = base64::engine::general_purpose::STANDARD.encode(json);
    let signature = p.sign(&stamp, policy.as_bytes());

    let fields = vec![
        ("key".to_owned(), key.to_owned()),
        ("Content-Type".to_owned(), content_type.to_owned()),
        ("x-amz-meta-upload-id".to_owned(), upload_id.to_owned()),
        ("X-Amz-Algorithm".to_owned(), ALGORITHM.to_owned()),
        ("X-Amz-Credential".to_owned(), credential),
        ("X-Amz-Date".to_owned(), date.to_owned()),
        ("Policy".to_owned(), policy),
        ("X-Amz-Signature".to_owned(), signature),
    ];
    Ok(PostPolicy { url: p.bucket_url().to_owned(), fields })
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
    use serde_json::{Value, json};

    const AK: &str = "AKIDTEST";
    const SK: &str = "SECRETTEST123";
    const UPLOAD_ID: &str = "0b5f3c1e-7d2a-4c1b-9f3e-2a4b6c8d0e1f";

    fn presigner(ep: &str) -> Presigner {
        Presigner::new(ep, "tb", "auto", AK, SK).unwrap()
    }

    fn field<'a>(pp: &'a PostPolicy, name: &str) -> &'a str {
        &pp.fields.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn policy_fields_conditions_and_signature() {
        // 2026-11-22T19:15:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_795_374_900) + Duration::from_millis(750);
        let key = "uploads/b3duZXI/0b5f/IMG \"0001\".HEIC";
        let ct = "image/heic; x=\"y\"";
        for ep in ["https://acct.r2.cloudflarestorage.com", "http://127.0.0.1:8014/"] {
            let p = presigner(ep);
            let pp = post_policy(&p, key, ct, 3_481_923, UPLOAD_ID, Duration::from_secs(3600), now).unwrap();
            assert_eq!(pp.url, format!("{}/tb", ep.trim_end_matches('/')));
            let names: Vec<&str> = pp.fields.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                names,
                [
                    "key",
                    "Content-Type",
                    "x-amz-meta-upload-id",
                    "X-Amz-Algorithm",
                    "X-Amz-Credential",
                    "X-Amz-Date",
                    "Policy",
                    "X-Amz-Signature"
                ]
            );
            assert_eq!(field(&pp, "key"), key);
            assert_eq!(field(&pp, "Content-Type"), ct);
            assert_eq!(field(&pp, "x-amz-meta-upload-id"), UPLOAD_ID);
            assert_eq!(field(&pp, "X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
            assert_eq!(field(&pp, "X-Amz-Credential"), "AKIDTEST/20261122/auto/s3/aws4_request");
            assert_eq!(field(&pp, "X-Amz-Date"), "20261122T191500Z");

            let policy = field(&pp, "Policy");
            let json_bytes = base64::engine::general_purpose::STANDARD.decode(policy).unwrap();
            let doc: Value = serde_json::from_slice(&json_bytes).unwrap();
            assert_eq!(
                doc,
                json!({
                    "expiration": "2026-11-22T20:15:00.000Z",
                    "conditions": [
                        {"bucket": "tb"},
                        ["eq", "$key", key],
                        ["eq", "$Content-Type", ct],
                        ["content-length-range", 3_481_923, 3_481_923],
                        {"x-amz-meta-upload-id": UPLOAD_ID},
                        {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                        {"x-amz-credential": "AKIDTEST/20261122/auto/s3/aws4_request"},
                        {"x-amz-date": "20261122T191500Z"},
                    ]
                })
            );
            // Expiration first, compact JSON.
            assert!(
                json_bytes
                    .starts_with(b"{\"expiration\":\"2026-11-22T20:15:00.000Z\",\"conditions\":[{\"bucket\":\"tb\"},")
            );

            // The signature, recomputed directly with aws-sigv4 from a fresh key.
            let signing_key = generate_signing_key(SK, now, "auto", "s3");
            assert_eq!(field(&pp, "X-Amz-Signature"), calculate_signature(signing_key, policy.as_bytes()));
        }
    }

    #[test]
    fn shares_the_presigners_day_key_across_days() {
        let p = presigner("http://127.0.0.1:8014");
        let d = Duration::from_secs(60);
        for secs in [1_795_391_999u64, 1_795_392_000, 1_795_391_999] {
            let now = UNIX_EPOCH + Duration::from_secs(secs);
            let pp = post_policy(&p, "k", "a/b", 0, UPLOAD_ID, d, now).unwrap();
            let expected =
                calculate_signature(generate_signing_key(SK, now, "auto", "s3"), field(&pp, "Policy").as_bytes());
            assert_eq!(field(&pp, "X-Amz-Signature"), expected);
            // Zero-byte uploads pin the range to [0, 0].
            let doc: Value = serde_json::from_slice(
                &base64::engine::general_purpose::STANDARD.decode(field(&pp, "Policy")).unwrap(),
            )
            .unwrap();
            assert_eq!(doc["conditions"][3], json!(["content-length-range", 0, 0]));
        }
    }

    #[test]
    fn expiration_format() {
        assert_eq!(expiration(0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(expiration(951_782_400 + 86_399).unwrap(), "2000-02-29T23:59:59.000Z");
        assert_eq!(expiration(1_795_374_900 + 3600).unwrap(), "2026-11-22T20:15:00.000Z");
        assert_eq!(expiration(253_402_300_799).unwrap(), "9999-12-31T23:59:59.000Z");
        assert_eq!(expiration(253_402_300_800), Err(PresignError::InvalidTime));
    }

    #[test]
    fn rejects_bad_input() {
        let p = presigner("https://acct.r2.cloudflarestorage.com");
        let now = UNIX_EPOCH + Duration::from_secs(1_795_374_900);
        let h = Duration::from_secs(3600);
        use PresignError::*;
        let pp = |key: &str, ct: &str, id: &str, d: Duration| post_policy(&p, key, ct, 1, id, d, now).err();
        assert_eq!(pp("k", "a/b", "id", Duration::ZERO), Some(InvalidExpiry));
        assert_eq!(pp("k", "a/b", "id", Duration::from_secs(604_801)), Some(InvalidExpiry));
        assert_eq!(pp("k", "a/b", "id", Duration::from_secs(604_800)), None);
        assert!(matches!(pp("", "a/b", "id", h), Some(InvalidKey(_))));
        assert!(matches!(pp("/k", "a/b", "id", h), Some(InvalidKey(_))));
        assert!(matches!(pp("a/../k", "a/b", "id", h), Some(InvalidKey(_))));
        assert_eq!(pp("k", "", "id", h), Some(InvalidHeaderValue("content-type")));
        assert_eq!(pp("k", "a/b\n", "id", h), Some(InvalidHeaderValue("content-type")));
        assert_eq!(pp("k", "a/b", "", h), Some(InvalidHeaderValue("x-amz-meta-upload-id")));
    }

    /// Live check against s3s-fs (see `presign::tests::live_s3s_fs`):
    /// `cargo test -- --ignored --nocapture live_post_policy`.
    #[test]
    #[ignore]
    fn live_post_policy() {
        let ep = std::env::var("LIVE_S3_ENDPOINT").unwrap_or("http://127.0.0.1:18014".into());
        let bucket = std::env::var("LIVE_S3_BUCKET").unwrap_or("pst".into());
        let p = Presigner::new(&ep, &bucket, "auto", AK, SK).unwrap();
        let now = SystemTime::now();
        let d = Duration::from_secs(300);
        let key = format!("live/{}/form (1).txt", std::process::id());
        let body = b"posted through a form\n";
        let dir = std::env::temp_dir().join(format!("post-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.txt");
        std::fs::write(&file, body).unwrap();

        let post = |pp: &PostPolicy| -> (u16, String) {
            let mut cmd = std::process::Command::new("curl");
            cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-H", "Expect:"]);
            for (n, v) in &pp.fields {
                cmd.arg("--form-string").arg(format!("{n}={v}"));
            }
            cmd.arg("-F").arg(format!("file=@{};type=text/plain", file.display()));
            cmd.arg(&pp.url);
            let out = cmd.output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let (resp, status) = text.rsplit_once('\n').unwrap();
            (status.trim().parse().unwrap(), resp.to_owned())
        };

        // Wrong size: refused by the content-length-range condition.
        let wrong = post_policy(&p, &key, "text/plain", body.len() as u64 + 1, UPLOAD_ID, d, now).unwrap();
        let (status, resp) = post(&wrong);
        assert!(status == 400 || status == 403, "{status} {resp}");
        // Tampered field: refused.
        let mut tampered = post_policy(&p, &key, "text/plain", body.len() as u64, UPLOAD_ID, d, now).unwrap();
        tampered.fields[1].1 = "text/html".into();
        let (status, resp) = post(&tampered);
        assert!(status == 400 || status == 403, "{status} {resp}");

        let pp = post_policy(&p, &key, "text/plain", body.len() as u64, UPLOAD_ID, d, now).unwrap();
        let (status, resp) = post(&pp);
        assert!(status == 204 || status == 200 || status == 201, "{status} {resp}");

        // The object is there with its type and metadata.
        let head = p.head_object(&key, d, now).unwrap();
        let out = std::process::Command::new("curl").args(["-s", "-I", "-g", &head.url]).output().unwrap();
        let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(headers.starts_with("http/1.1 200"), "{headers}");
        assert!(headers.contains(&format!("content-length: {}", body.len())), "{headers}");
        assert!(headers.contains("content-type: text/plain"), "{headers}");
        assert!(headers.contains(&format!("x-amz-meta-upload-id: {UPLOAD_ID}")), "{headers}");
        let del = p.delete_object(&key, d, now).unwrap();
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "-g", &del.url])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "204");
        let _ = std::fs::remove_dir_all(&dir);
        println!("live POST policy check passed against {ep}");
    }
}

//! Fast SigV4 query-string presigning for S3-compatible stores (Cloudflare R2, AWS S3, s3s).
//!
//! The SDK's presigner runs a whole orchestrator pipeline per URL (~25–33 µs here). This
//! module builds the canonical request itself with S3's rules — path-style URL, the key
//! percent-encoded once per segment (unreserved characters kept, `/` kept between
//! segments), no path normalisation, `UNSIGNED-PAYLOAD`, signature in the query string,
//! plus the `x-id=<Operation>` parameter the SDK adds — hashes it with SHA-256 and signs
//! the string to sign with aws-sigv4's own [`calculate_signature`], using a signing key
//! from aws-sigv4's [`generate_signing_key`] that is cached for the current UTC day.
//!
//! The unit tests below prove the URLs and headers are byte-identical to aws-sdk-s3's
//! presigned requests at a fixed signing time.

use std::fmt;
use std::ops::Range;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// Everything but the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) is
/// percent-encoded (uppercase hex, UTF-8 bytes). This is exactly the SDK's
/// `aws_smithy_http` `BASE_SET`, used for query keys and values.
pub(crate) const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// Same, but `/` is kept: an object key is a path of segments (the SDK's "greedy label").
pub(crate) const PATH_SET: &AsciiSet = &QUERY_SET.remove(b'/');

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "s3";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// S3's (and R2's) longest presigned URL lifetime.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(604_800);
/// S3's and R2's longest object key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// S3's highest multipart part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresignError {
    #[error("invalid S3 endpoint: {0}")]
    InvalidEndpoint(&'static str),
    #[error("invalid bucket name: {0}")]
    InvalidBucket(&'static str),
    #[error("invalid region: {0}")]
    InvalidRegion(&'static str),
    #[error("invalid credentials: {0}")]
    InvalidCredentials(&'static str),
    #[error("invalid object key: {0}")]
    InvalidKey(&'static str),
    /// A header value that is empty or holds a byte other than visible ASCII or space.
    #[error("invalid value for header {0}")]
    InvalidHeaderValue(&'static str),
    #[error("invalid upload id")]
    InvalidUploadId,
    #[error("expires_in must be between 1 second and 7 days")]
    InvalidExpiry,
    #[error("part number must be between 1 and 10000")]
    InvalidPartNumber,
    #[error("signing time out of range")]
    InvalidTime,
}

/// A presigned request: the client sends `method url` with exactly `headers` (plus the
/// `Host` its HTTP library derives from `url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    pub method: &'static str,
    pub url: String,
    /// Headers the client must send, lowercase names, sorted by name, excluding `host`.
    pub headers: Vec<(String, String)>,
}

/// Query-string SigV4 presigner for one bucket, path style.
///
/// Cheap to call from many threads at once (`&self`); share it in an `Arc`.
pub struct Presigner {
    /// `scheme://authority` as the client will use it, lowercase, no trailing slash.
    endpoint: String,
    /// `endpoint + "/" + bucket + "/"`: every object URL starts with this.
    object_prefix: String,
    /// The signed `host` header: the authority, without a default port (as aws-sigv4 does).
    host: String,
    bucket: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    /// `enc(access_key_id) + "%2F"`: the start of `X-Amz-Credential` in a URL.
    credential_prefix_enc: String,
    /// `"%2F" + enc(region) + "%2Fs3%2Faws4_request"`: the end of `X-Amz-Credential`.
    credential_suffix_enc: String,
    /// `"/" + region + "/s3/aws4_request\n"`: the end of the scope line in a string to sign.
    scope_suffix: String,
    /// The SigV4 signing key of one UTC day (days since the Unix epoch).
    key_cache: RwLock<Option<(u64, [u8; 32])>>,
}

impl fmt::Debug for Presigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presigner")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish_non_exhaustive()
    }
}

/// The signing time, truncated to the second, in the two SigV4 text forms.
#[derive(Clone, Copy)]
pub(crate) struct Stamp {
    /// Seconds since the Unix epoch.
    pub(crate) secs: u64,
    /// Days since the Unix epoch (the signing-key cache key).
    pub(crate) day: u64,
    /// `YYYYMMDD`
    pub(crate) date: [u8; 8],
    /// `YYYYMMDD'T'HHMMSS'Z'`
    pub(crate) date_time: [u8; 16],
}

impl Stamp {
    pub(crate) fn new(now: SystemTime) -> Result<Self, PresignError> {
        let secs = now.duration_since(UNIX_EPOCH).map_err(|_| PresignError::InvalidTime)?.as_secs();
        let day = secs / 86_400;
        let (y, m, d) = civil_from_days(day);
        if y > 9999 {
            return Err(PresignError::InvalidTime);
        }
        let tod = secs % 86_400;
        let mut date = [0u8; 8];
        put_digits(&mut date[0..4], y);
        put_digits(&mut date[4..6], m);
        put_digits(&mut date[6..8], d);
        let mut date_time = [0u8; 16];
        date_time[..8].copy_from_slice(&date);
        date_time[8] = b'T';
        put_digits(&mut date_time[9..11], tod / 3600);
        put_digits(&mut date_time[11..13], tod / 60 % 60);
        put_digits(&mut date_time[13..15], tod % 60);
        date_time[15] = b'Z';
        Ok(Stamp { secs, day, date, date_time })
    }

    pub(crate) fn date(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(&self.date).expect("ASCII")
    }

    pub(crate) fn date_time(&self) -> &str {
        std::str::from_utf8(&self.date_time).expect("ASCII")
    }
}

/// Writes `n` as exactly `out.len()` decimal digits (zero-padded).
fn put_digits(out: &mut [u8], mut n: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn is_visible_ascii_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// A header value a client can send and a server will canonicalise like we do:
/// non-empty, visible ASCII and spaces only (no tabs, controls or non-ASCII bytes).
pub(crate) fn check_header_value(name: &'static str, v: &str) -> Result<(), PresignError> {
    if v.trim_matches(' ').is_empty() || !v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(PresignError::InvalidHeaderValue(name));
    }
    Ok(())
}

pub(crate) fn check_expiry(expires_in: Duration) -> Result<u64, PresignError> {
    if expires_in < Duration::from_secs(1) || expires_in > MAX_EXPIRES_IN {
        return Err(PresignError::InvalidExpiry);
    }
    Ok(expires_in.as_secs())
}

/// Object keys as S3 path segments: 1..=1024 bytes, no leading `/`, and no `.` or `..`
/// segment (browsers and HTTP libraries resolve dot segments before sending, which
/// would change the signed path).
pub(crate) fn check_key(key: &str) -> Result<(), PresignError> {
    if key.is_empty() {
        return Err(PresignError::InvalidKey("empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(PresignError::InvalidKey("longer than 1024 bytes"));
    }
    if key.starts_with('/') {
        return Err(PresignError::InvalidKey("starts with '/'"));
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return Err(PresignError::InvalidKey("has a '.' or '..' segment"));
    }
    Ok(())
}

/// A query value: a string (percent-encoded) or a number.
#[derive(Clone, Copy)]
enum QueryValue<'a> {
    Str(&'a str),
    Num(u64),
}

/// A value as it goes into the canonical request: aws-sigv4 trims spaces at both ends
/// and collapses runs of spaces into one (S3 does the same on its side).
fn hash_header_value(h: &mut Sha256, v: &str) {
    let v = v.trim_matches(' ');
    if !v.contains("  ") {
        h.update(v.as_bytes());
        return;
    }
    let mut prev_space = false;
    for part in v.split(' ') {
        if part.is_empty() {
            continue;
        }
        if prev_space {
            h.update(b" ");
        }
        h.update(part.as_bytes());
        prev_space = true;
    }
}

impl Presigner {
    /// `endpoint` is `scheme://host[:port]` exactly as clients will reach the store (the
    /// signed host must match): `https://<account>.r2.cloudflarestorage.com`,
    /// `http://127.0.0.1:8014`. A trailing `/` is accepted; a path, query or user info is not.
    pub fn new(
        endpoint: &str,
        bucket: &str,
        region: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<Self, PresignError> {
        let uri: http::Uri = endpoint.parse().map_err(|_| PresignError::InvalidEndpoint("not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            _ => {
                return Err(PresignError::InvalidEndpoint("scheme must be http or https"));
            }
        };
        let authority = uri.authority().ok_or(PresignError::InvalidEndpoint("no host"))?;
        if authority.as_str().contains('@') {
            return Err(PresignError::InvalidEndpoint("user info is not allowed"));
        }
        if authority.host().is_empty() {
            return Err(PresignError::InvalidEndpoint("no host"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(PresignError::InvalidEndpoint("must not have a path or query"));
        }
        let authority_lc = authority.as_str().to_ascii_lowercase();
        let default_port = matches!((scheme, authority.port_u16()), ("http", Some(80)) | ("https", Some(443)));
        let host = if default_port { authority.host().to_ascii_lowercase() } else { authority_lc.clone() };

        if bucket.is_empty() || bucket.len() > 255 {
            return Err(PresignError::InvalidBucket("length"));
        }
        if bucket == "." || bucket == ".." {
            return Err(PresignError::InvalidBucket("'.' or '..'"));
        }
        if !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
            return Err(PresignError::InvalidBucket("only ASCII letters, digits, '-', '.' and '_'"));
        }
        if !is_visible_ascii_token(region) || region.contains('/') {
            return Err(PresignError::InvalidRegion("empty, '/' or not visible ASCII"));
        }
        if !is_visible_ascii_token(access_key_id) || access_key_id.contains('/') {
            return Err(PresignError::InvalidCredentials("access key id empty, '/' or not visible ASCII"));
        }
        if secret_access_key.is_empty() {
            return Err(PresignError::InvalidCredentials("empty secret access key"));
        }

        let endpoint = format!("{scheme}://{authority_lc}");
        let object_prefix = format!("{endpoint}/{bucket}/");
        let credential_prefix_enc = format!("{}%2F", utf8_percent_encode(access_key_id, QUERY_SET));
        let credential_suffix_enc = format!("%2F{}%2F{SERVICE}%2Faws4_request", utf8_percent_encode(region, QUERY_SET));
        let scope_suffix = format!("/{region}/{SERVICE}/aws4_request\n");
        Ok(Presigner {
            endpoint,
            object_prefix,
            host,
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            credential_prefix_enc,
            credential_suffix_enc,
            scope_suffix,
            key_cache: RwLock::new(None),
        })
    }

    /// `scheme://host[:port]`, no trailing slash.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The host the signatures cover (the endpoint's authority without a default port).
    pub fn signed_host(&self) -> &str {
        &self.host
    }

    /// `endpoint/bucket`: the POST-policy form action.
    pub(crate) fn bucket_url(&self) -> &str {
        &self.object_prefix[..self.object_prefix.len() - 1]
    }

    /// `YYYYMMDD/region/s3/aws4_request` credential scope, prefixed with the access key:
    /// the unencoded `X-Amz-Credential` value.
    pub(crate) fn credential(&self, stamp: &Stamp) -> String {
        format!("{}/{}/{}/{SERVICE}/aws4_request", self.access_key_id, stamp.date(), self.region)
    }

    /// The SigV4 signing key for `stamp`'s UTC day, from aws-sigv4's
    /// `generate_signing_key`, computed once per day and cached.
    pub(crate) fn signing_key(&self, stamp: &Stamp) -> [u8; 32] {
        if let Some((day, key)) = *self.key_cache.read().unwrap_or_else(|e| e.into_inner())
            && day == stamp.day
        {
            return key;
        }
        let t = UNIX_EPOCH + Duration::from_secs(stamp.secs);
        let generated = generate_signing_key(&self.secret_access_key, t, &self.region, SERVICE);
        let mut key = [0u8; 32];
        key.copy_from_slice(generated.as_ref());
        *self.key_cache.write().unwrap_or_else(|e| e.into_inner()) = Some((stamp.day, key));
        key
    }

    /// Hex signature of `string_to_sign` with the day's key (aws-sigv4's `calculate_signature`).
    pub(crate) fn sign(&self, stamp: &Stamp, string_to_sign: &[u8]) -> String {
        calculate_signature(self.signing_key(stamp), string_to_sign)
    }

    /// Presigned `PutObject`. Signs `host`, `content-length`, `content-type`,
    /// `x-amz-meta-upload-id`, `if-none-match: *` and, when given,
    /// `x-amz-checksum-sha256` (base64 of the SHA-256 digest): the store itself refuses
    /// another size, type or body, and a second write of the key.
    #[allow(clippy::too_many_arguments)]
    pub fn put_object(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        upload_id: &str,
        checksum_sha256: Option<&str>,
        expires_in: Duration,
        now: SystemTime,
    ) -> Result<PresignedRequest, PresignError> {
        check_header_value("content-type", content_type)?;
        check_header_value("x-amz-meta-upload-id", upload_id)?;
        let length = content_length.to_string();
        let mut headers: [(&'static str, &str); 5] = [
            ("content-length", &length),
            ("content-type", content_type),
            ("if-none-match", "*"),
            ("x-amz-checksum-sha256", ""),
            ("x-amz-meta-upload-id", upload_id),
        ];
        let headers: &[(&'static str, &str)] = match checksum_sha256 {
            Some(c) => {
                check_header_value("x-amz-checksum-sha256", c)?;
                headers[3].1 = c;
                &headers
            }
            None => {
                headers.swap(3, 4);
                &headers[..4]
            }
        };
        self.presign("PUT", key, &[("x-id", QueryValue::Str("PutObject"))], headers, expires_in, now)
    }

    /// Presigned `UploadPart`: signs `host` and `content-length` (the part's exact size).
    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        content_length: u64,
        expires_in: Duration,
        now: SystemTime,
    ) -> Result<PresignedRequest, PresignError> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(PresignError::InvalidPartNumber);
        }
        if upload_id.is_empty() {
            return Err(PresignError::InvalidUploadId);
        }
        let length = content_length.to_string();
        self.presign(
            "PUT",
            key,
            &[
                ("x-id", QueryValue::Str("UploadPart")),
                ("partNumber", QueryValue::Num(part_number.into())),
                ("uploadId", QueryValue::Str(upload_id)),
            ],
            &[("content-length", &length)],
            expires_in,
            now,
        )
    }

    /// Presigned `GetObject` with optional `response-content-type` and
    /// `response-content-disposition` overrides (any UTF-8; percent-encoded here).
    pub fn get_object(
        &self,
        key: &str,
        response_content_type: Option<&str>,
        response_content_disposition: Option<&str>,
        expires_in: Duration,
        now: SystemTime,
    ) -> Result<PresignedRequest, PresignError> {
        let mut params = [("x-id", QueryValue::Str("GetObject")); 3];
        let mut n = 1;
        // The SDK's order: x-id, response-content-disposition, response-content-type.
        if let Some(v) = response_content_disposition {
            params[n] = ("response-content-disposition", QueryValue::Str(v));
            n += 1;
        }
        if let Some(v) = response_content_type {
            params[n] = ("response-content-type", QueryValue::Str(v));
            n += 1;
        }
        self.presign("GET", key, &params[..n], &[], expires_in, now)
    }

    /// Presigned `HeadObject` (signs `host` only; the SDK adds no `x-id` for it).
    pub fn head_object(
        &self,
        key: &str,
        expires_in: Duration,
        now: SystemTime,
    ) -> Result<PresignedRequest, PresignError> {
        self.presign("HEAD", key, &[], &[], expires_in, now)
    }

    /// Presigned `DeleteObject` (signs `host` only).
    pub fn delete_object(
        &self,
        key: &str,
        expires_in: Duration,
        now: SystemTime,
    ) -> Result<PresignedRequest, PresignError> {
        self.presign("DELETE", key, &[("x-id", QueryValue::Str("DeleteObject"))], &[], expires_in, now)
    }

    /// Builds the URL in the SDK's order (operation parameters first, then the
    /// `X-Amz-*` ones, `X-Amz-Signature` last) and hashes the canonical request from
    /// slices of it (sorted parameters: `X-Amz-*` sort before lowercase names).
    ///
    /// `params`: operation query parameters in the SDK's URL order; names are static and
    /// made of unreserved characters only. `headers`: signed headers other than `host`,
    /// sorted by (lowercase) name.
    fn presign(
        &self,
        method: &'static str,
        key: &str,
        params: &[(&'static str, QueryValue<'_>)],
        headers: &[(&'static str, &str)],
        expires_in: Duration,
        now: SystemTime,
    ) -> Result<PresignedRequest, PresignError> {
        debug_assert!(headers.windows(2).all(|w| w[0].0 < w[1].0));
        check_key(key)?;
        let expires = check_expiry(expires_in)?;
        let stamp = Stamp::new(now)?;
        let expires = expires.to_string();

        let mut url = String::with_capacity(self.object_prefix.len() + key.len() * 2 + 400 + params.len() * 64);
        url.push_str(&self.object_prefix);
        url.extend(utf8_percent_encode(key, PATH_SET));
        let path = self.endpoint.len()..url.len();

        // Operation parameters, remembering where each `name=value` is.
        let mut ranges: [Range<usize>; 4] = [0..0, 0..0, 0..0, 0..0];
        assert!(params.len() <= ranges.len());
        let mut sep = '?';
        for (i, (name, value)) in params.iter().enumerate() {
            url.push(sep);
            sep = '&';
            let start = url.len();
            url.push_str(name);
            url.push('=');
            match value {
                QueryValue::Str(s) => url.extend(utf8_percent_encode(s, QUERY_SET)),
                QueryValue::Num(n) => {
                    use std::fmt::Write as _;
                    let _ = write!(url, "{n}");
                }
            }
            ranges[i] = start..url.len();
        }
        let mut order = [0usize, 1, 2, 3];
        let order = &mut order[..params.len()];
        order.sort_unstable_by_key(|&i| params[i].0);

        // The X-Amz-* parameters, in sorted order both in the URL and the canonical query.
        url.push(sep);
        let amz_start = url.len();
        url.push_str("X-Amz-Algorithm=");
        url.push_str(ALGORITHM);
        url.push_str("&X-Amz-Credential=");
        url.push_str(&self.credential_prefix_enc);
        url.push_str(stamp.date());
        url.push_str(&self.credential_suffix_enc);
        url.push_str("&X-Amz-Date=");
        url.push_str(stamp.date_time());
        url.push_str("&X-Amz-Expires=");
        url.push_str(&expires);
        url.push_str("&X-Amz-SignedHeaders=");
        let mut host_done = false;
        let mut first = true;
        for (name, _) in headers {
            if !host_done && *name > "host" {
                if !first {
                    url.push_str("%3B");
                }
                url.push_str("host");
                host_done = true;
                first = false;
            }
            if !first {
                url.push_str("%3B");
            }
            url.push_str(name);
            first = false;
        }
        if !host_done {
            if !first {
                url.push_str("%3B");
            }
            url.push_str("host");
        }
        let amz = amz_start..url.len();

        // Canonical request, streamed into SHA-256.
        let mut h = Sha256::new();
        h.update(method.as_bytes());
        h.update(b"\n");
        h.update(url[path].as_bytes());
        h.update(b"\n");
        h.update(url[amz.clone()].as_bytes());
        for &i in order.iter() {
            h.update(b"&");
            h.update(url[ranges[i].clone()].as_bytes());
        }
        h.update(b"\n");
        let mut host_done = false;
        for (name, value) in headers {
            if !host_done && *name > "host" {
                h.update(b"host:");
                h.update(self.host.as_bytes());
                h.update(b"\n");
                host_done = true;
            }
            h.update(name.as_bytes());
            h.update(b":");
            hash_header_value(&mut h, value);
            h.update(b"\n");
        }
        if !host_done {
            h.update(b"host:");
            h.update(self.host.as_bytes());
            h.update(b"\n");
        }
        h.update(b"\n");
        // The signed-headers list, as in the URL but with ';' for "%3B".
        let signed = &url[amz.clone()][url[amz.clone()].rfind('=').expect("SignedHeaders=") + 1..];
        for (i, name) in signed.split("%3B").enumerate() {
            if i > 0 {
                h.update(b";");
            }
            h.update(name.as_bytes());
        }
        h.update(b"\n");
        h.update(UNSIGNED_PAYLOAD.as_bytes());
        let creq_hash = h.finalize();

        // String to sign.
        let mut hex = [0u8; 64];
        hex::encode_to_slice(creq_hash, &mut hex).expect("64 hex digits");
        let mut sts = String::with_capacity(17 + 16 + 1 + 8 + self.scope_suffix.len() + 64);
        sts.push_str(ALGORITHM);
        sts.push('\n');
        sts.push_str(stamp.date_time());
        sts.push('\n');
        sts.push_str(stamp.date());
        sts.push_str(&self.scope_suffix);
        sts.push_str(std::str::from_utf8(&hex).expect("hex"));
        let signature = self.sign(&stamp, sts.as_bytes());

        url.push_str("&X-Amz-Signature=");
        url.push_str(&signature);

        let headers = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        Ok(PresignedRequest { method, url, headers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
    use aws_sdk_s3::presigning::PresigningConfig;

    const AK: &str = "AKIDTEST";
    const SK: &str = "SECRETTEST123";
    const R2: &str = "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com";
    const LOCAL: &str = "http://127.0.0.1:8014";
    const ENDPOINTS: [&str; 2] = [R2, LOCAL];
    const BUCKET: &str = "tb";
    const UPLOAD_ID: &str = "0b5f3c1e-7d2a-4c1b-9f3e-2a4b6c8d0e1f";
    const SHA: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    const DISPOSITION: &str = r#"attachment; filename="a b.txt"; filename*=UTF-8''%C3%A9.txt"#;
    const KEYS: [&str; 6] = [
        "uploads/b3duZXI/0b5f3c1e-7d2a-4c1b-9f3e-2a4b6c8d0e1f/IMG_0001.HEIC",
        "a_b-c.d/x~41y",
        "dir with spaces/a b.txt",
        "p/!\"#$&'()*+,:;<=>?@[\\]^`{|}~ x%y",
        "ünï/日本語 ファイル.txt",
        "a//b/.../c.",
    ];

    /// 2026-11-22T19:15:00Z, and a second just before a UTC midnight.
    fn times() -> [SystemTime; 3] {
        [
            UNIX_EPOCH + Duration::from_secs(1_795_374_900),
            UNIX_EPOCH + Duration::from_secs(1_795_391_999),
            UNIX_EPOCH + Duration::from_secs(1_795_392_000),
        ]
    }

    fn client(endpoint: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("auto"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    fn cfg(t: SystemTime, d: Duration) -> PresigningConfig {
        PresigningConfig::builder().start_time(t).expires_in(d).build().unwrap()
    }

    fn presigner(endpoint: &str) -> Presigner {
        Presigner::new(endpoint, BUCKET, "auto", AK, SK).unwrap()
    }

    #[track_caller]
    fn assert_same(sdk: &aws_sdk_s3::presigning::PresignedRequest, mine: &PresignedRequest) {
        assert_eq!(sdk.method(), mine.method);
        assert_eq!(sdk.uri(), mine.url, "URL differs from the SDK's");
        let mut sdk_headers: Vec<(String, String)> = sdk
            .headers()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
            .collect();
        sdk_headers.sort();
        assert_eq!(sdk_headers, mine.headers, "headers differ from the SDK's");
        let url = mine.url.to_ascii_lowercase();
        assert!(!url.contains("x-amz-checksum-crc32"), "{url}");
        assert!(!url.contains("x-amz-sdk-checksum-algorithm"), "{url}");
    }

    #[tokio::test]
    async fn put_object_matches_sdk() {
        let mut checked = 0;
        for ep in ENDPOINTS {
            let (c, p) = (client(ep), presigner(ep));
            for key in KEYS {
                for t in times() {
                    for d in [1, 3600, 604_800].map(Duration::from_secs) {
                        for ct in ["image/heic", "text/plain; charset=utf-8", "  a/b  ;  x=1 "] {
                            for sum in [None, Some(SHA)] {
                                let len = 3_481_923;
                                let sdk = c
                                    .put_object()
                                    .bucket(BUCKET)
                                    .key(key)
                                    .content_type(ct)
                                    .content_length(len as i64)
                                    .metadata("upload-id", UPLOAD_ID)
                                    .if_none_match("*")
                                    .set_checksum_sha256(sum.map(str::to_owned))
                                    .presigned(cfg(t, d))
                                    .await
                                    .unwrap();
                                let mine = p.put_object(key, ct, len, UPLOAD_ID, sum, d, t).unwrap();
                                assert_same(&sdk, &mine);
                                let signed = if sum.is_some() {
                                    "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match%3Bx-amz-checksum-sha256%3Bx-amz-meta-upload-id&"
                                } else {
                                    "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match%3Bx-amz-meta-upload-id&"
                                };
                                assert!(mine.url.contains(signed), "{}", mine.url);
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 2 * KEYS.len() * 3 * 3 * 3 * 2);
    }

    #[tokio::test]
    async fn upload_part_matches_sdk() {
        for ep in ENDPOINTS {
            let (c, p) = (client(ep), presigner(ep));
            for key in KEYS {
                for upload_id in ["VXBsb2FkIElE/Zm9v+YmFy==", "2~iCw_lDY8VoNCqCFmaeqa8B-vFWhr5cT", "a b/c+d=e&f%g"] {
                    for (part, len) in [(1u32, 8_388_608u64), (10_000, 1), (7, 0)] {
                        for t in times() {
                            let d = Duration::from_secs(3600);
                            let sdk = c
                                .upload_part()
                                .bucket(BUCKET)
                                .key(key)
                                .upload_id(upload_id)
                                .part_number(part as i32)
                                .content_length(len as i64)
                                .presigned(cfg(t, d))
                                .await
                                .unwrap();
                            let mine = p.upload_part(key, upload_id, part, len, d, t).unwrap();
                            assert_same(&sdk, &mine);
                            assert!(mine.url.contains("X-Amz-SignedHeaders=content-length%3Bhost&"));
                        }
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn get_object_matches_sdk() {
        let every_ascii: String = (0x20u8..0x7f).map(char::from).collect();
        let unicode = "attachment; filename*=UTF-8''日本%E6.txt; x=\"é ü\"";
        let types = [None, Some("image/heic"), Some("text/plain; charset=\"utf-8\"")];
        let dispositions = [None, Some(DISPOSITION), Some("inline"), Some(every_ascii.as_str()), Some(unicode)];
        for ep in ENDPOINTS {
            let (c, p) = (client(ep), presigner(ep));
            for key in KEYS {
                for ty in types {
                    for disp in dispositions {
                        for t in times() {
                            let d = Duration::from_secs(600);
                            let sdk = c
                                .get_object()
                                .bucket(BUCKET)
                                .key(key)
                                .set_response_content_type(ty.map(str::to_owned))
                                .set_response_content_disposition(disp.map(str::to_owned))
                                .presigned(cfg(t, d))
                                .await
                                .unwrap();
                            let mine = p.get_object(key, ty, disp, d, t).unwrap();
                            assert_same(&sdk, &mine);
                            assert!(mine.headers.is_empty());
                            assert!(mine.url.contains("X-Amz-SignedHeaders=host&"));
                        }
                    }
                }
            }
        }
        // The awkward value also works as a content type.
        let t = times()[0];
        let d = Duration::from_secs(1);
        let c = client(R2);
        let sdk = c
            .get_object()
            .bucket(BUCKET)
            .key(KEYS[3])
            .response_content_type(&every_ascii)
            .response_content_disposition(unicode)
            .presigned(cfg(t, d))
            .await
            .unwrap();
        let mine = presigner(R2).get_object(KEYS[3], Some(&every_ascii), Some(unicode), d, t).unwrap();
        assert_same(&sdk, &mine);
    }

    #[tokio::test]
    async fn head_and_delete_match_sdk() {
        for ep in ENDPOINTS {
            let (c, p) = (client(ep), presigner(ep));
            for key in KEYS {
                let (t, d) = (times()[1], Duration::from_secs(900));
                let sdk = c.head_object().bucket(BUCKET).key(key).presigned(cfg(t, d)).await.unwrap();
                assert_same(&sdk, &p.head_object(key, d, t).unwrap());
                let sdk = c.delete_object().bucket(BUCKET).key(key).presigned(cfg(t, d)).await.unwrap();
                assert_same(&sdk, &p.delete_object(key, d, t).unwrap());
            }
        }
    }

    #[tokio::test]
    async fn endpoint_forms_match_sdk() {
        // Trailing slash, default ports (signed host without the port, URL keeps it),
        // another region and awkward credentials.
        let (t, d) = (times()[0], Duration::from_secs(60));
        for ep in [
            "https://acct.r2.cloudflarestorage.com/",
            "https://s3.eu-west-1.amazonaws.com:443",
            "http://localhost:80",
            "http://[::1]:9000",
        ] {
            for (region, ak, sk) in [("auto", AK, SK), ("eu-west-1", "AK+ID=x", "s/e+c=r")] {
                let conf = aws_sdk_s3::config::Builder::new()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new(region))
                    .endpoint_url(ep)
                    .force_path_style(true)
                    .credentials_provider(Credentials::new(ak, sk, None, None, "test"))
                    .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                    .build();
                let c = aws_sdk_s3::Client::from_conf(conf);
                let p = Presigner::new(ep, "my-bucket.v2", region, ak, sk).unwrap();
                let sdk = c.get_object().bucket("my-bucket.v2").key(KEYS[0]).presigned(cfg(t, d)).await.unwrap();
                assert_same(&sdk, &p.get_object(KEYS[0], None, None, d, t).unwrap());
            }
        }
    }

    #[test]
    fn signing_key_cache_follows_the_day() {
        let p = presigner(LOCAL);
        let [a, b, c] = times();
        let d = Duration::from_secs(60);
        let first: Vec<_> = [a, b, c, a, c]
            .iter()
            .map(|&t| p.put_object(KEYS[0], "image/png", 1, UPLOAD_ID, None, d, t).unwrap())
            .collect();
        for (i, &t) in [a, b, c, a, c].iter().enumerate() {
            let fresh = presigner(LOCAL);
            assert_eq!(fresh.put_object(KEYS[0], "image/png", 1, UPLOAD_ID, None, d, t).unwrap(), first[i]);
        }
        // The cached key is aws-sigv4's key for the day.
        let stamp = Stamp::new(c).unwrap();
        let expected = generate_signing_key(SK, c, "auto", "s3");
        assert_eq!(p.signing_key(&stamp).as_slice(), expected.as_ref());
    }

    #[test]
    fn stamps_match_chrono() {
        for secs in (0..4_102_444_800u64).step_by(86_400 * 7 + 3_601).chain([
            951_782_400, // 2000-02-29
            1_795_391_999,
            253_402_300_799, // 9999-12-31T23:59:59Z
        ]) {
            let s = Stamp::new(UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
            let c = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap();
            assert_eq!(s.date_time(), c.format("%Y%m%dT%H%M%SZ").to_string());
            assert_eq!(s.date(), c.format("%Y%m%d").to_string());
        }
        assert_eq!(
            Stamp::new(UNIX_EPOCH + Duration::from_secs(253_402_300_800)).err(),
            Some(PresignError::InvalidTime)
        );
        assert_eq!(Stamp::new(UNIX_EPOCH - Duration::from_secs(1)).err(), Some(PresignError::InvalidTime));
    }

    #[test]
    fn rejects_bad_input() {
        let p = presigner(R2);
        let t = times()[0];
        let h = Duration::from_secs(3600);
        let put = |key: &str, ct: &str, id: &str, sum: Option<&str>, d: Duration| {
            p.put_object(key, ct, 1, id, sum, d, t).err()
        };
        use PresignError::*;
        assert_eq!(put("k", "a/b", "id", None, Duration::ZERO), Some(InvalidExpiry));
        assert_eq!(put("k", "a/b", "id", None, Duration::from_millis(999)), Some(InvalidExpiry));
        assert_eq!(put("k", "a/b", "id", None, MAX_EXPIRES_IN + Duration::from_millis(1)), Some(InvalidExpiry));
        assert_eq!(put("k", "a/b", "id", None, Duration::from_secs(1)), None);
        assert_eq!(put("k", "a/b", "id", None, MAX_EXPIRES_IN), None);
        assert!(matches!(put("", "a/b", "id", None, h), Some(InvalidKey(_))));
        assert!(matches!(put("/k", "a/b", "id", None, h), Some(InvalidKey(_))));
        assert!(matches!(put("a/../k", "a/b", "id", None, h), Some(InvalidKey(_))));
        assert!(matches!(put("a/./k", "a/b", "id", None, h), Some(InvalidKey(_))));
        assert!(matches!(put("..", "a/b", "id", None, h), Some(InvalidKey(_))));
        assert!(matches!(put(&"k".repeat(1025), "a/b", "id", None, h), Some(InvalidKey(_))));
        assert_eq!(put(&"k".repeat(1024), "a/b", "id", None, h), None);
        assert_eq!(put("k", "", "id", None, h), Some(InvalidHeaderValue("content-type")));
        assert_eq!(put("k", "   ", "id", None, h), Some(InvalidHeaderValue("content-type")));
        assert_eq!(put("k", "a/b\r\nx: y", "id", None, h), Some(InvalidHeaderValue("content-type")));
        assert_eq!(put("k", "a/b\tc", "id", None, h), Some(InvalidHeaderValue("content-type")));
        assert_eq!(put("k", "a/é", "id", None, h), Some(InvalidHeaderValue("content-type")));
        assert_eq!(put("k", "a/b", "", None, h), Some(InvalidHeaderValue("x-amz-meta-upload-id")));
        assert_eq!(put("k", "a/b", "id", Some(""), h), Some(InvalidHeaderValue("x-amz-checksum-sha256")));
        assert_eq!(p.upload_part("k", "u", 0, 1, h, t).err(), Some(InvalidPartNumber));
        assert_eq!(p.upload_part("k", "u", 10_001, 1, h, t).err(), Some(InvalidPartNumber));
        assert_eq!(p.upload_part("k", "", 1, 1, h, t).err(), Some(InvalidUploadId));
        assert_eq!(p.get_object("k", None, None, Duration::ZERO, t).err(), Some(InvalidExpiry));

        for ep in [
            "ftp://x",
            "x.example.com",
            "https://",
            "https://u:p@x.example.com",
            "https://x.example.com/path",
            "https://x.example.com/?q=1",
            "",
        ] {
            assert!(matches!(Presigner::new(ep, "b", "auto", AK, SK), Err(InvalidEndpoint(_))), "{ep}");
        }
        for b in ["", "a/b", "a b", ".", "..", "é"] {
            assert!(matches!(Presigner::new(R2, b, "auto", AK, SK), Err(InvalidBucket(_))), "{b}");
        }
        assert!(matches!(Presigner::new(R2, "b", "", AK, SK), Err(InvalidRegion(_))));
        assert!(matches!(Presigner::new(R2, "b", "a/b", AK, SK), Err(InvalidRegion(_))));
        assert!(matches!(Presigner::new(R2, "b", "auto", "", SK), Err(InvalidCredentials(_))));
        assert!(matches!(Presigner::new(R2, "b", "auto", AK, ""), Err(InvalidCredentials(_))));
        // The secret never shows in Debug output.
        assert!(!format!("{p:?}").contains(SK));
    }

    #[test]
    fn endpoint_normalisation() {
        let p = Presigner::new("HTTPS://ACCT.R2.example.COM/", "b", "auto", AK, SK).unwrap();
        assert_eq!(p.endpoint(), "https://acct.r2.example.com");
        assert_eq!(p.signed_host(), "acct.r2.example.com");
        assert_eq!(p.bucket_url(), "https://acct.r2.example.com/b");
        let p = Presigner::new("https://x.example.com:443", "b", "auto", AK, SK).unwrap();
        assert_eq!(p.endpoint(), "https://x.example.com:443");
        assert_eq!(p.signed_host(), "x.example.com");
        let p = Presigner::new(LOCAL, "b", "auto", AK, SK).unwrap();
        assert_eq!(p.signed_host(), "127.0.0.1:8014");
    }

    /// `cargo test --release -- --ignored --nocapture bench_presign`
    #[test]
    #[ignore]
    fn bench_presign() {
        const N: u32 = 100_000;
        let p = presigner(R2);
        let t = times()[0];
        let d = Duration::from_secs(3600);
        let key = KEYS[0];
        let _ = p.put_object(key, "image/heic", 3_481_923, UPLOAD_ID, Some(SHA), d, t);
        let start = std::time::Instant::now();
        for i in 0..N {
            let r = p.put_object(key, "image/heic", 3_481_923 + u64::from(i), UPLOAD_ID, Some(SHA), d, t).unwrap();
            std::hint::black_box(r);
        }
        let put = start.elapsed().as_nanos() / u128::from(N);
        let start = std::time::Instant::now();
        for i in 0..N {
            let r = p.upload_part(key, "VXBsb2FkIElE/Zm9v+YmFy==", 1 + i % 10_000, 8_388_608, d, t).unwrap();
            std::hint::black_box(r);
        }
        let part = start.elapsed().as_nanos() / u128::from(N);
        let start = std::time::Instant::now();
        for _ in 0..N {
            let r = p.get_object(key, Some("image/heic"), Some(DISPOSITION), d, t).unwrap();
            std::hint::black_box(r);
        }
        let get = start.elapsed().as_nanos() / u128::from(N);
        // The crypto alone: one HMAC-SHA256 over a string to sign with the cached key.
        let stamp = Stamp::new(t).unwrap();
        let sts = [b'x'; 140];
        let start = std::time::Instant::now();
        for _ in 0..N {
            std::hint::black_box(p.sign(&stamp, std::hint::black_box(&sts)));
        }
        let hmac = start.elapsed().as_nanos() / u128::from(N);
        let start = std::time::Instant::now();
        for _ in 0..N / 10 {
            std::hint::black_box(generate_signing_key(SK, t, "auto", "s3").as_ref().len());
        }
        let keygen = start.elapsed().as_nanos() / u128::from(N / 10);
        // The SDK's presigner on the same PUT, for a ratio (fewer iterations: it is slower).
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let c = client(R2);
        let sdk_n = N / 10;
        let start = std::time::Instant::now();
        rt.block_on(async {
            for i in 0..sdk_n {
                let r = c
                    .put_object()
                    .bucket(BUCKET)
                    .key(key)
                    .content_type("image/heic")
                    .content_length(3_481_923 + i64::from(i))
                    .metadata("upload-id", UPLOAD_ID)
                    .if_none_match("*")
                    .checksum_sha256(SHA)
                    .presigned(cfg(t, d))
                    .await
                    .unwrap();
                std::hint::black_box(r);
            }
        });
        let sdk_put = start.elapsed().as_nanos() / u128::from(sdk_n);
        println!(
            "ns per presign over {N} iterations: put_object {put}, upload_part {part}, get_object {get}; \
             calculate_signature with cached key {hmac}; generate_signing_key {keygen}; \
             SDK presigned put_object {sdk_put} (over {sdk_n})"
        );
    }

    /// Live check against s3s-fs (signature-checking S3 server), driven with curl:
    /// `s3s-fs --host 127.0.0.1 --port 18014 --access-key AKIDTEST --secret-key SECRETTEST123 /tmp/s3data`
    /// with the bucket folder `/tmp/s3data/pst` created (s3s wants 3+ character bucket
    /// names), then `cargo test -- --ignored --nocapture live_s3s_fs`
    /// (`LIVE_S3_ENDPOINT` and `LIVE_S3_BUCKET` override the endpoint and bucket).
    #[tokio::test]
    #[ignore]
    async fn live_s3s_fs() {
        use base64::Engine as _;
        let ep = std::env::var("LIVE_S3_ENDPOINT").unwrap_or("http://127.0.0.1:18014".into());
        let bucket = std::env::var("LIVE_S3_BUCKET").unwrap_or("pst".into());
        let p = Presigner::new(&ep, &bucket, "auto", AK, SK).unwrap();
        let now = SystemTime::now();
        let d = Duration::from_secs(300);
        let run = std::process::id();
        let key = format!("live/{run}/a b~(1).txt");
        let body = b"hello presigned world\n".to_vec();
        let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));

        // PUT with every signed header: 200; a second PUT of the key: 412.
        let put =
            p.put_object(&key, "text/plain; charset=utf-8", body.len() as u64, UPLOAD_ID, Some(&sum), d, now).unwrap();
        assert_eq!(curl::send(&put, &body).0, 200);
        assert_eq!(curl::send(&put, &body).0, 412);
        // Another size, type or body is refused by the store.
        let key2 = format!("live/{run}/b.txt");
        let put2 = p.put_object(&key2, "text/plain", body.len() as u64, UPLOAD_ID, Some(&sum), d, now).unwrap();
        let mut wrong_type = put2.clone();
        wrong_type.headers[1].1 = "text/html".into();
        assert_eq!(curl::send(&wrong_type, &body).0, 403);
        let mut short = body.clone();
        short.pop();
        let mut wrong_len = put2.clone();
        wrong_len.headers[0].1 = short.len().to_string();
        assert_eq!(curl::send(&wrong_len, &short).0, 403);
        let mut wrong_body = body.clone();
        wrong_body[0] = b'j';
        assert_eq!(curl::send(&put2, &wrong_body).0, 400);
        // An expired URL is refused.
        let old = p.get_object(&key, None, None, Duration::from_secs(1), now - Duration::from_secs(10)).unwrap();
        assert_eq!(curl::send(&old, b"").0, 403);

        // GET with response overrides.
        let get = p.get_object(&key, Some("application/octet-stream"), Some(DISPOSITION), d, now).unwrap();
        let (status, headers, got) = curl::send(&get, b"");
        assert_eq!(status, 200, "{headers}");
        assert_eq!(got, body);
        let lower = headers.to_ascii_lowercase();
        assert!(lower.contains("content-type: application/octet-stream"), "{headers}");
        assert!(headers.contains(DISPOSITION), "{headers}");
        let head = p.head_object(&key, d, now).unwrap();
        let (status, headers, _) = curl::send(&head, b"");
        assert_eq!(status, 200);
        assert!(headers.to_ascii_lowercase().contains("x-amz-meta-upload-id: 0b5f"), "{headers}");

        // Multipart: create and complete with the SDK, parts through presigned URLs.
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("auto"))
            .endpoint_url(&ep)
            .force_path_style(true)
            .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        let c = aws_sdk_s3::Client::from_conf(conf);
        let mkey = format!("live/{run}/multi part+.bin");
        let created = c.create_multipart_upload().bucket(&bucket).key(&mkey).send().await.unwrap();
        let upload_id = created.upload_id().unwrap().to_owned();
        let part1 = vec![b'a'; 5 * 1024 * 1024];
        let part2 = b"tail".to_vec();
        let mut parts = Vec::new();
        for (n, bytes) in [(1u32, &part1), (2, &part2)] {
            let req = p.upload_part(&mkey, &upload_id, n, bytes.len() as u64, d, now).unwrap();
            let (status, headers, _) = curl::send(&req, bytes);
            assert_eq!(status, 200, "{headers}");
            let etag = headers
                .lines()
                .find_map(|l| l.strip_prefix("etag: ").or_else(|| l.strip_prefix("ETag: ")))
                .unwrap()
                .trim()
                .to_owned();
            parts.push(aws_sdk_s3::types::CompletedPart::builder().part_number(n as i32).e_tag(etag).build());
        }
        // A part of another size than signed is refused.
        let mut req = p.upload_part(&mkey, &upload_id, 2, 5, d, now).unwrap();
        req.headers[0].1 = "4".into();
        assert_eq!(curl::send(&req, b"tail").0, 403);
        c.complete_multipart_upload()
            .bucket(&bucket)
            .key(&mkey)
            .upload_id(&upload_id)
            .multipart_upload(aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .unwrap();
        let head = c.head_object().bucket(&bucket).key(&mkey).send().await.unwrap();
        assert_eq!(head.content_length(), Some((part1.len() + part2.len()) as i64));

        for k in [&key, &mkey] {
            let del = p.delete_object(k, d, now).unwrap();
            assert_eq!(curl::send(&del, b"").0, 204);
        }
        println!("live s3s-fs check passed against {ep}");
    }

    /// Minimal curl driver for the live test.
    pub(crate) mod curl {
        use super::PresignedRequest;
        use std::process::Command;

        /// Sends `req` with `body` (for PUT); returns status, raw response headers, body.
        pub(crate) fn send(req: &PresignedRequest, body: &[u8]) -> (u16, String, Vec<u8>) {
            let dir = std::env::temp_dir().join(format!(
                "presign-curl-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let (bin, bout, hout) = (dir.join("in"), dir.join("out"), dir.join("headers"));
            std::fs::write(&bin, body).unwrap();
            let mut cmd = Command::new("curl");
            cmd.args(["-s", "-g", "-o"]).arg(&bout).arg("-D").arg(&hout).args(["-w", "%{http_code}", "-H", "Expect:"]);
            match req.method {
                "HEAD" => cmd.arg("-I"),
                m => cmd.args(["-X", m]),
            };
            for (n, v) in &req.headers {
                cmd.arg("-H").arg(format!("{n}: {v}"));
            }
            if req.method == "PUT" {
                cmd.arg("-T").arg(&bin);
            }
            cmd.arg(&req.url);
            let out = cmd.output().unwrap();
            let status = String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0);
            let headers = std::fs::read_to_string(&hout).unwrap_or_default();
            let got = std::fs::read(&bout).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&dir);
            (status, headers, got)
        }
    }
}

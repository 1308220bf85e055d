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
/// The limits as the presigner's types take them.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(crate::limits::MAX_URL_TTL_SECS);
pub const MAX_PART_NUMBER: u32 = crate::limits::MAX_PARTS as u32;

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

mod encoding;
mod operations;
#[cfg(test)]
mod tests;

use encoding::{QueryValue, hash_header_value, is_visible_ascii_token};
pub(crate) use encoding::{Stamp, check_expiry, check_header_value, check_key};

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
        // Every signed header, `host` in its sorted place among the others.
        let split = headers.partition_point(|(name, _)| *name < "host");
        let signed_headers = headers[..split]
            .iter()
            .copied()
            .chain(std::iter::once(("host", self.host.as_str())))
            .chain(headers[split..].iter().copied());

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
        for (i, (name, _)) in signed_headers.clone().enumerate() {
            if i > 0 {
                url.push_str("%3B");
            }
            url.push_str(name);
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
        for (name, value) in signed_headers.clone() {
            h.update(name.as_bytes());
            h.update(b":");
            hash_header_value(&mut h, value);
            h.update(b"\n");
        }
        h.update(b"\n");
        for (i, (name, _)) in signed_headers.enumerate() {
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

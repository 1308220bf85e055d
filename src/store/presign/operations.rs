//! The S3 operations the broker presigns, each naming what it signs: the store then
//! refuses a request that differs in any signed part.

use std::time::{Duration, SystemTime};

use super::encoding::{QueryValue, check_header_value};
use super::{MAX_PART_NUMBER, PresignError, PresignedRequest, Presigner};

impl Presigner {
    /// Presigned `PutObject`. Signs `host`, `content-length`, `content-type`,
    /// `x-amz-meta-upload-id`, `if-none-match: *` and, when given,
    /// `x-amz-checksum-sha256` (base64 of the SHA-256 digest): the store itself refuses
    /// another size, type or body, and a second write of the key. With `content_length`
    /// None, no `content-length` is signed: the store then takes a body of any size, and
    /// the broker checks the stored size with HeadObject before it records anything (an
    /// Uppy upload whose client declared no size).
    #[allow(clippy::too_many_arguments)]
    pub fn put_object(
        &self,
        key: &str,
        content_type: &str,
        content_length: Option<u64>,
        upload_id: &str,
        checksum_sha256: Option<&str>,
        expires_in: Duration,
        now: SystemTime,
    ) -> Result<PresignedRequest, PresignError> {
        check_header_value("content-type", content_type)?;
        check_header_value("x-amz-meta-upload-id", upload_id)?;
        if let Some(c) = checksum_sha256 {
            check_header_value("x-amz-checksum-sha256", c)?;
        }
        let length = content_length.map(|n| n.to_string());
        // Sorted by name, the optional ones left out.
        let all: [(&'static str, Option<&str>); 5] = [
            ("content-length", length.as_deref()),
            ("content-type", Some(content_type)),
            ("if-none-match", Some("*")),
            ("x-amz-checksum-sha256", checksum_sha256),
            ("x-amz-meta-upload-id", Some(upload_id)),
        ];
        let mut headers: [(&'static str, &str); 5] = [("", ""); 5];
        let mut n = 0;
        for (name, value) in all {
            if let Some(v) = value {
                headers[n] = (name, v);
                n += 1;
            }
        }
        self.presign("PUT", key, &[("x-id", QueryValue::Str("PutObject"))], &headers[..n], expires_in, now)
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
}

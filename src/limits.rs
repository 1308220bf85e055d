//! The S3 / R2 limits the broker enforces before a request reaches the store, in one
//! place: validation, planning and presigning all refer to these.

/// Units for stating sizes.
pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;

/// SigV4 presigned URLs live at most 7 days (S3 and R2 refuse longer `X-Amz-Expires`).
pub const MAX_URL_TTL_SECS: u64 = 7 * 24 * 60 * 60;
/// S3 and R2 limit object keys to 1,024 bytes (UTF-8).
pub const MAX_KEY_LEN: usize = 1024;
/// S3 and R2 take at most 5 GiB in one PutObject or POST upload.
pub const MAX_SINGLE_UPLOAD: u64 = 5 * GIB;
/// A multipart upload has at most 10,000 parts, numbered 1 to 10,000 (S3 and R2).
pub const MAX_PARTS: u64 = 10_000;
/// Every part but the last is at least 5 MiB (S3 and R2).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// No part may exceed 5 GiB (S3 and R2).
pub const MAX_PART_SIZE: u64 = 5 * GIB;
/// S3's largest object, 5 TiB (R2's is slightly below; its parts rule keeps us under anyway).
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * GIB;

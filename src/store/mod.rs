//! The object store: one concrete struct (no trait — tests run against a real S3 server).
//! Requests the broker makes itself (HeadObject, DeleteObject, multipart calls) go through
//! aws-sdk-s3; presigned URLs are built by `presign::Presigner` with aws-sigv4 directly,
//! which skips the SDK's per-request pipeline (see presign.rs).

pub mod bucket;
pub mod multipart;
mod objects;
pub mod post_policy;
pub mod presign;

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation, retry::RetryConfig,
    timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::ChecksumMode;
use aws_smithy_types::error::display::DisplayErrorContext;
use secrecy::ExposeSecret;

use crate::config::{Provider, S3Config};
pub use presign::{PresignedRequest, Presigner};

#[derive(Debug, thiserror::Error)]
#[error("object store: {source:#}")]
pub struct StoreError {
    unavailable: bool,
    source: anyhow::Error,
}

impl StoreError {
    /// Transport failures, timeouts and 5xx answers: retry later (503). A 4xx from the store
    /// (bad credentials, missing bucket) is a deployment bug (500, logged).
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    pub(crate) fn other(source: impl Into<anyhow::Error>) -> Self {
        Self { unavailable: false, source: source.into() }
    }
}

pub(crate) type RawResponse = aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// The HTTP status of a service error, if the store answered at all.
pub(crate) fn status_of<E>(e: &SdkError<E, RawResponse>) -> Option<u16> {
    match e {
        SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
        _ => None,
    }
}

/// The one boundary between a store failure and the API's answer (a presigning failure
/// is our bug: 500).
impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() { Self::unavailable(e) } else { Self::Internal(e.into()) }
    }
}

impl From<presign::PresignError> for crate::error::Error {
    fn from(e: presign::PresignError) -> Self {
        Self::Internal(anyhow::Error::new(e))
    }
}

pub(crate) fn classify<E>(op: &'static str, e: SdkError<E, RawResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let unavailable = match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(_) => status_of(&e).is_some_and(|s| s >= 500),
        _ => false,
    };
    StoreError { unavailable, source: anyhow::anyhow!("{op}: {}", DisplayErrorContext(&e)) }
}

/// What HeadObject says about an object, for verification at complete.
#[derive(Debug, Clone, Default)]
pub struct ObjectHead {
    pub size: i64,
    pub content_type: Option<String>,
    pub upload_id: Option<String>,
    pub checksum_sha256: Option<String>,
    pub etag: Option<String>,
}

#[derive(Clone)]
pub struct Store {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) bucket: String,
    pub presigner: std::sync::Arc<Presigner>,
    provider: Provider,
    /// CompleteMultipartUpload's own, longer bound (a per-operation config override).
    pub(crate) complete_timeouts: TimeoutConfig,
    /// Plain HTTP for presigned requests the broker sends itself (`complete`'s ranged GET):
    /// a presigned URL costs a signature, where the SDK's pipeline costs ~0.4 ms of CPU per
    /// call. Bounded like every store call.
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Duration,
}

/// Every store call is bounded: `timeout` for the whole call, its one retry included, and
/// half of it for each attempt (connecting included), so a stalled attempt on a stale
/// connection still leaves time for a fresh one. Transport failures, timeouts and 5xx
/// answers are `unavailable` (503).
fn timeouts(timeout: Duration) -> TimeoutConfig {
    let attempt = timeout / 2;
    TimeoutConfig::builder()
        .connect_timeout(attempt)
        .operation_attempt_timeout(attempt)
        .operation_timeout(timeout)
        .build()
}

/// CompleteMultipartUpload assembles up to 10,000 parts and may take far longer than any
/// other call: one attempt with the whole (longer) bound; connecting is as quick as ever.
fn complete_timeouts(timeout: Duration, complete: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(timeout / 2)
        .operation_attempt_timeout(complete)
        .operation_timeout(complete)
        .build()
}

impl Store {
    pub fn new(cfg: &S3Config) -> anyhow::Result<Self> {
        let credentials =
            Credentials::new(&cfg.access_key_id, cfg.secret_access_key.expose_secret(), None, None, "r2-broker");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .endpoint_url(&cfg.endpoint)
            .force_path_style(true)
            .credentials_provider(credentials)
            // R2 rejects the SDK's default CRC32 checksums on some calls; only send them
            // when an operation requires one.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(timeouts(cfg.timeout))
            .retry_config(RetryConfig::standard().with_max_attempts(2).with_initial_backoff(Duration::from_millis(100)))
            .build();
        let presigner = Presigner::new(
            &cfg.endpoint,
            &cfg.bucket,
            &cfg.region,
            &cfg.access_key_id,
            cfg.secret_access_key.expose_secret(),
        )?;
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(conf),
            bucket: cfg.bucket.clone(),
            presigner: std::sync::Arc::new(presigner),
            provider: cfg.provider,
            complete_timeouts: complete_timeouts(cfg.timeout, cfg.complete_timeout),
            http: reqwest::Client::builder()
                .connect_timeout(cfg.timeout / 2)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            timeout: cfg.timeout,
        })
    }

    /// Cloudflare R2 has no POST policy uploads.
    pub fn supports_post_policy(&self) -> bool {
        self.provider == Provider::S3
    }

    /// `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StoreError> {
        let res =
            self.client.head_object().bucket(&self.bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await;
        match res {
            Ok(o) => Ok(Some(ObjectHead {
                size: o.content_length.unwrap_or(-1),
                content_type: o.content_type,
                upload_id: o.metadata.and_then(|mut m| m.remove("upload-id")),
                checksum_sha256: o.checksum_sha256,
                etag: o.e_tag,
            })),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify("HeadObject", e)),
        }
    }

    /// Deletes an object; an object that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(classify("DeleteObject", e)),
        }
    }

    /// For `/readyz`: the store answers and the bucket exists with our credentials.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(|e| classify("HeadBucket", e))?;
        Ok(())
    }
}

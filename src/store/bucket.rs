//! Bucket-level calls for `r2-broker doctor`: HeadBucket, GetBucketCors and
//! GetBucketLifecycleConfiguration, with the same client and deadlines as every other store
//! call. The answers come back as plain values (no SDK types above this layer); an answer
//! the doctor explains differently (403, 404, 501) keeps its status and S3 error code.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

use super::{RawResponse, Store, status_of};

/// A bucket call that did not give the answer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketCallError {
    /// The HTTP status, when the store answered at all (none: transport failure or timeout).
    pub status: Option<u16>,
    /// The S3 error code (`AccessDenied`, `NoSuchBucket`, `NotImplemented`…), when given.
    pub code: Option<String>,
    /// One line, for the doctor's report.
    pub message: String,
}

impl std::fmt::Display for BucketCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn call_error<E>(op: &'static str, e: SdkError<E, RawResponse>) -> BucketCallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = status_of(&e);
    let code = e.code().map(str::to_owned);
    let message = match (status, &code) {
        (Some(s), Some(c)) => format!("{op}: HTTP {s} {c}"),
        (Some(s), None) => format!("{op}: HTTP {s}"),
        (None, _) => format!("{op}: {}", DisplayErrorContext(&e)),
    };
    BucketCallError { status, code, message }
}

/// One bucket CORS rule, header and method names as the bucket holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsRule {
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
}

/// One lifecycle rule, reduced to what matters for incomplete multipart uploads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: Option<String>,
    pub enabled: bool,
    /// The key prefix the rule applies to (`None` or empty: the whole bucket); a rule with
    /// any other filter (tags, sizes) has `other_filter` set.
    pub prefix: Option<String>,
    pub other_filter: bool,
    pub abort_incomplete_multipart_days: Option<i32>,
}

impl Store {
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// HeadBucket: the bucket exists and the credentials may use it.
    pub async fn head_bucket(&self) -> Result<(), BucketCallError> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(|e| call_error("HeadBucket", e))?;
        Ok(())
    }

    /// The bucket's CORS rules; `None` when it has no CORS configuration.
    pub async fn bucket_cors(&self) -> Result<Option<Vec<CorsRule>>, BucketCallError> {
        match self.client.get_bucket_cors().bucket(&self.bucket).send().await {
            Ok(out) => Ok(Some(
                out.cors_rules
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| CorsRule {
                        allowed_origins: r.allowed_origins,
                        allowed_methods: r.allowed_methods,
                        allowed_headers: r.allowed_headers.unwrap_or_default(),
                        expose_headers: r.expose_headers.unwrap_or_default(),
                    })
                    .collect(),
            )),
            Err(e) if e.code() == Some("NoSuchCORSConfiguration") => Ok(None),
            Err(e) => Err(call_error("GetBucketCors", e)),
        }
    }

    /// The bucket's lifecycle rules; `None` when it has no lifecycle configuration.
    pub async fn bucket_lifecycle(&self) -> Result<Option<Vec<LifecycleRule>>, BucketCallError> {
        use aws_sdk_s3::types::{ExpirationStatus, LifecycleRuleFilter};
        match self.client.get_bucket_lifecycle_configuration().bucket(&self.bucket).send().await {
            Ok(out) => Ok(Some(
                out.rules
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| {
                        let filter = r.filter.unwrap_or_else(|| LifecycleRuleFilter::builder().build());
                        #[expect(deprecated, reason = "a rule's top-level Prefix is still what some stores send")]
                        let prefix = filter.prefix.clone().or(r.prefix);
                        LifecycleRule {
                            id: r.id,
                            enabled: r.status == ExpirationStatus::Enabled,
                            prefix,
                            other_filter: filter.tag.is_some()
                                || filter.and.is_some()
                                || filter.object_size_greater_than.is_some()
                                || filter.object_size_less_than.is_some(),
                            abort_incomplete_multipart_days: r
                                .abort_incomplete_multipart_upload
                                .and_then(|a| a.days_after_initiation),
                        }
                    })
                    .collect(),
            )),
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(None),
            Err(e) => Err(call_error("GetBucketLifecycleConfiguration", e)),
        }
    }
}

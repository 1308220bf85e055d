//! Bucket CORS and lifecycle configuration for the embedded store, which s3s-fs 0.14.1 does
//! not have (it answers 501). [`DevS3`] wraps `s3s_fs::FileSystem`: every object call is
//! delegated unchanged, and the five bucket-configuration calls are answered here. It is an
//! `S3` implementation behind s3s's own service, so these calls are signature-checked like
//! any other (a wrong key gets 403) — an s3s route hook would have had to parse the XML
//! bodies itself.
//!
//! What is kept and what is enforced: the configuration lives in memory, per bucket, for the
//! life of the process. What `GetBucketCors` reports when nothing was put is the rule the
//! tower-http layer in front of the store really applies ([`super::effective_cors_rule`]); a
//! rule that is put is stored and reported (so `r2-broker doctor` can be tested against a bad
//! one) but the layer keeps answering browsers with its own rule. Lifecycle rules are
//! reported, never executed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

#[derive(Default)]
struct BucketConfig {
    /// `None`: never put (or deleted) — the effective rule of the CORS layer is reported.
    cors: Option<CORSRules>,
    lifecycle: Option<LifecycleRules>,
}

/// s3s-fs plus per-bucket configuration.
pub struct DevS3 {
    fs: s3s_fs::FileSystem,
    /// The store folder: a bucket exists when its folder does (as in s3s-fs).
    root: PathBuf,
    configs: Arc<Mutex<HashMap<String, BucketConfig>>>,
}

impl DevS3 {
    pub fn new(fs: s3s_fs::FileSystem, root: PathBuf) -> Self {
        Self { fs, root, configs: Arc::default() }
    }

    fn existing(&self, bucket: &str) -> S3Result<()> {
        if self.root.join(bucket).is_dir() { Ok(()) } else { Err(s3_error!(NoSuchBucket)) }
    }

    fn with_config<T>(&self, bucket: &str, f: impl FnOnce(&mut BucketConfig) -> T) -> S3Result<T> {
        self.existing(bucket)?;
        let mut configs = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(f(configs.entry(bucket.to_owned()).or_default()))
    }
}

/// `impl S3 for DevS3`: `$name: $input => $output` calls are s3s-fs's, the items after `;`
/// are our own.
macro_rules! dev_s3 {
    ($($name:ident: $input:ident => $output:ident),* $(,)?; $($own:item)*) => {
        #[async_trait::async_trait]
        impl S3 for DevS3 {
            $(
                async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.fs.$name(req).await
                }
            )*
            $($own)*
        }
    };
}

dev_s3! {
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
    complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
    copy_object: CopyObjectInput => CopyObjectOutput,
    create_bucket: CreateBucketInput => CreateBucketOutput,
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
    delete_bucket: DeleteBucketInput => DeleteBucketOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    head_object: HeadObjectInput => HeadObjectOutput,
    list_buckets: ListBucketsInput => ListBucketsOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
    list_parts: ListPartsInput => ListPartsOutput,
    put_object: PutObjectInput => PutObjectOutput,
    upload_part: UploadPartInput => UploadPartOutput,
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput;

    /// s3s-fs honours `If-Match` on PUT only; R2 and S3 also on GET (the broker pins the
    /// reads of a verified object to its ETag with it), so the dev store does too.
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let condition = req.input.if_match.clone();
        let out = self.fs.get_object(req).await?;
        if let Some(s3s::dto::ETagCondition::ETag(expected)) = &condition
            && !out.output.e_tag.as_ref().is_some_and(|e| e.strong_cmp(expected))
        {
            return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
        }
        Ok(out)
    }

    async fn get_bucket_cors(&self, req: S3Request<GetBucketCorsInput>) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let rules = self.with_config(&req.input.bucket, |c| c.cors.clone())?;
        let cors_rules = Some(rules.unwrap_or_else(|| vec![super::effective_cors_rule()]));
        Ok(S3Response::new(GetBucketCorsOutput { cors_rules }))
    }

    async fn put_bucket_cors(&self, req: S3Request<PutBucketCorsInput>) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let rules = req.input.cors_configuration.cors_rules;
        if rules.is_empty() || rules.iter().any(|r| r.allowed_methods.is_empty() || r.allowed_origins.is_empty()) {
            return Err(s3_error!(MalformedXML, "every CORS rule needs AllowedMethod and AllowedOrigin"));
        }
        self.with_config(&req.input.bucket, |c| c.cors = Some(rules))?;
        Ok(S3Response::new(PutBucketCorsOutput::default()))
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        self.with_config(&req.input.bucket, |c| c.cors = None)?;
        Ok(S3Response::new(DeleteBucketCorsOutput::default()))
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        match self.with_config(&req.input.bucket, |c| c.lifecycle.clone())? {
            Some(rules) => Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
                rules: Some(rules),
                ..Default::default()
            })),
            None => Err(s3_error!(NoSuchLifecycleConfiguration)),
        }
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let rules = req.input.lifecycle_configuration.map(|l| l.rules).unwrap_or_default();
        if rules.is_empty() {
            return Err(s3_error!(MalformedXML, "a lifecycle configuration needs at least one rule"));
        }
        self.with_config(&req.input.bucket, |c| c.lifecycle = Some(rules))?;
        Ok(S3Response::new(PutBucketLifecycleConfigurationOutput::default()))
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        self.with_config(&req.input.bucket, |c| c.lifecycle = None)?;
        Ok(S3Response::new(DeleteBucketLifecycleOutput::default()))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::types::{CorsConfiguration, CorsRule};

    use crate::store::EmbeddedStore;

    fn client(endpoint: &str, secret: &str) -> aws_sdk_s3::Client {
        crate::store::tests::client_with(endpoint, "AKIDCFG", secret)
    }

    #[tokio::test]
    async fn cors_and_lifecycle_are_kept_per_bucket_and_signature_checked() {
        let root = std::env::temp_dir().join(format!("r2b-store-cfg-{}", std::process::id()));
        let store =
            EmbeddedStore::start(&root, "cfg", "127.0.0.1:0".parse().unwrap(), "AKIDCFG", "cfgsecret").await.unwrap();
        let s3 = client(&store.endpoint, "cfgsecret");

        // Nothing put: the CORS layer's own rule, and no lifecycle configuration.
        let got = s3.get_bucket_cors().bucket("cfg").send().await.unwrap();
        let rule = &got.cors_rules()[0];
        assert_eq!(rule.allowed_origins(), ["*"]);
        assert_eq!(rule.allowed_methods(), ["GET", "PUT", "HEAD", "POST"]);
        assert_eq!(rule.expose_headers(), ["ETag"]);
        assert!(rule.allowed_headers().iter().any(|h| h == "x-amz-meta-upload-id"));
        let err = s3.get_bucket_lifecycle_configuration().bucket("cfg").send().await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));

        // A rule put is what is read back; a wrong key may neither put nor read.
        let mine = CorsRule::builder().allowed_origins("https://a.example").allowed_methods("GET").build().unwrap();
        let conf = CorsConfiguration::builder().cors_rules(mine).build().unwrap();
        let wrong = client(&store.endpoint, "not-the-secret");
        let err = wrong.put_bucket_cors().bucket("cfg").cors_configuration(conf.clone()).send().await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
        let err = wrong.get_bucket_cors().bucket("cfg").send().await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
        s3.put_bucket_cors().bucket("cfg").cors_configuration(conf).send().await.unwrap();
        let got = s3.get_bucket_cors().bucket("cfg").send().await.unwrap();
        assert_eq!(got.cors_rules()[0].allowed_origins(), ["https://a.example"]);
        s3.delete_bucket_cors().bucket("cfg").send().await.unwrap();
        let got = s3.get_bucket_cors().bucket("cfg").send().await.unwrap();
        assert_eq!(got.cors_rules()[0].allowed_origins(), ["*"]);

        // A bucket that does not exist has no configuration.
        let err = s3.get_bucket_cors().bucket("nope").send().await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
        store.stop().await;
        std::fs::remove_dir_all(&root).unwrap();
    }
}

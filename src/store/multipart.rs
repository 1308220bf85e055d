//! Multipart calls the broker makes itself. The store's UploadId may contain `/` (R2): it
//! travels only in query strings and request bodies built by the SDK, never in a path.

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::{Store, StoreError, classify, status_of};

/// One part as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub part_number: i32,
    pub size: i64,
    pub etag: String,
}

impl Store {
    pub async fn create_multipart(&self, key: &str, content_type: &str, upload_id: &str) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .metadata("upload-id", upload_id)
            .send()
            .await
            .map_err(|e| classify("CreateMultipartUpload", e))?;
        out.upload_id.ok_or_else(|| StoreError::other(anyhow::anyhow!("CreateMultipartUpload returned no UploadId")))
    }

    /// Every part the store has, across all ListParts pages, sorted by part number (some
    /// stores, s3s-fs among them, return them unsorted). `None` when the store no longer
    /// knows the upload.
    pub async fn list_parts(&self, key: &str, store_upload_id: &str) -> Result<Option<Vec<StoredPart>>, StoreError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let res = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(store_upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await;
            let page = match res {
                Ok(p) => p,
                Err(e) if matches!(status_of(&e), Some(404)) => return Ok(None),
                Err(e) => return Err(classify("ListParts", e)),
            };
            for p in page.parts() {
                parts.push(StoredPart {
                    part_number: p.part_number.unwrap_or(0),
                    size: p.size.unwrap_or(-1),
                    etag: p.e_tag.clone().unwrap_or_default(),
                });
            }
            match (page.is_truncated, page.next_part_number_marker) {
                (Some(true), Some(next)) if !next.is_empty() => marker = Some(next),
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        parts.dedup_by_key(|p| p.part_number);
        Ok(Some(parts))
    }

    pub async fn complete_multipart(
        &self,
        key: &str,
        store_upload_id: &str,
        parts: &[StoredPart],
    ) -> Result<(), StoreError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| CompletedPart::builder().part_number(p.part_number).e_tag(&p.etag).build())
                    .collect(),
            ))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(store_upload_id)
            .multipart_upload(completed)
            .customize()
            .config_override(aws_sdk_s3::config::Builder::new().timeout_config(self.complete_timeouts.clone()))
            .send()
            .await
            .map_err(|e| classify("CompleteMultipartUpload", e))?;
        Ok(())
    }

    /// Idempotent: an upload the store already forgot (404, or 403/empty answers from
    /// s3s-fs after an abort) counts as aborted.
    pub async fn abort_multipart(&self, key: &str, store_upload_id: &str) -> Result<(), StoreError> {
        match self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(store_upload_id).send().await
        {
            Ok(_) => Ok(()),
            // 404 NoSuchUpload on S3 and R2. s3s-fs answers 403 for an upload it already
            // forgot; the id comes from our own database, so a 403 here cannot be a guess at
            // someone else's upload — at worst the bucket lifecycle rule removes a leftover.
            Err(e) if matches!(status_of(&e), Some(404 | 403)) => Ok(()),
            Err(e) => Err(classify("AbortMultipartUpload", e)),
        }
    }
}

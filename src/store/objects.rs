//! Object bytes the broker itself reads and writes: the first bytes of an upload for
//! sniffing, an image for its variants, and the variants it writes. Never a request's body:
//! these run in `complete` (a few KiB) and in the job worker.

use aws_sdk_s3::primitives::ByteStream;

use super::{Store, StoreError, classify, status_of};

impl Store {
    /// The first `n` bytes of an object (fewer when it is shorter): one ranged GET.
    /// `None` when there is no such object.
    pub async fn read_prefix(&self, key: &str, n: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if n == 0 {
            return Ok(Some(Vec::new()));
        }
        let res =
            self.client.get_object().bucket(&self.bucket).key(key).range(format!("bytes=0-{}", n - 1)).send().await;
        let out = match res {
            Ok(out) => out,
            // 416: an empty object has no byte 0.
            Err(e) if status_of(&e) == Some(416) => return Ok(Some(Vec::new())),
            Err(e) if status_of(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(classify("GetObject", e)),
        };
        let mut bytes = collect(out.body).await?;
        bytes.truncate(n as usize); // a store that ignores Range sends it all
        Ok(Some(bytes))
    }

    /// A whole object of at most `max` bytes (checked before reading: HeadObject's size is
    /// what the caller verified). `None` when there is no such object.
    pub async fn read_all(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let res = self.client.get_object().bucket(&self.bucket).key(key).send().await;
        let out = match res {
            Ok(out) => out,
            Err(e) if status_of(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(classify("GetObject", e)),
        };
        if out.content_length.is_some_and(|len| len < 0 || len as u64 > max) {
            return Err(StoreError::other(anyhow::anyhow!("GetObject: {key} is larger than {max} bytes")));
        }
        Ok(Some(collect(out.body).await?))
    }

    /// Writes (or overwrites) an object the broker made: an image variant.
    pub async fn write(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| classify("PutObject", e))?;
        Ok(())
    }
}

async fn collect(body: ByteStream) -> Result<Vec<u8>, StoreError> {
    match body.collect().await {
        Ok(data) => Ok(data.into_bytes().to_vec()),
        // The connection broke mid-body: the store is (or the network to it is) unavailable.
        Err(e) => Err(StoreError { unavailable: true, source: anyhow::anyhow!("GetObject body: {e}") }),
    }
}

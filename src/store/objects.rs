//! Object bytes the broker itself reads and writes: the first bytes of an upload for
//! sniffing, an image for its variants, and the variants it writes. Never a request's body:
//! these run in `complete` (a few KiB) and in the job worker.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;

use super::{Store, StoreError, classify, status_of};

impl Store {
    /// The first `n` bytes of an object (fewer when it is shorter): one ranged GET of a
    /// presigned URL, within the store timeout (its one retry included). With `etag`, only
    /// of that version (`If-Match`: what HeadObject just verified). `None` when there is no
    /// such object.
    pub async fn read_prefix(&self, key: &str, n: u64, etag: Option<&str>) -> Result<Option<Vec<u8>>, StoreError> {
        if n == 0 {
            return Ok(Some(Vec::new()));
        }
        let attempt = || async {
            let url = self
                .presigner
                .get_object(key, None, None, Duration::from_secs(60), SystemTime::now())
                .map_err(StoreError::other)?
                .url;
            let mut req = self.http.get(url).header("range", format!("bytes=0-{}", n - 1));
            if let Some(etag) = etag {
                req = req.header("if-match", etag);
            }
            let mut res = req.send().await.map_err(|e| unavailable(e.without_url()))?;
            match res.status().as_u16() {
                200 | 206 => {}
                404 => return Ok(None),
                // An empty object has no byte 0.
                416 => return Ok(Some(Vec::new())),
                // Replaced since HeadObject: the caller checks again.
                412 => return Err(unavailable("the object changed since HeadObject")),
                s if s >= 500 => return Err(unavailable(format!("GetObject: HTTP {s}"))),
                s => return Err(StoreError::other(anyhow::anyhow!("GetObject (ranged): HTTP {s}"))),
            }
            // At most `n` bytes are read, even from a store that ignores Range and sends all.
            let mut bytes = Vec::with_capacity(n as usize);
            while (bytes.len() as u64) < n {
                match res.chunk().await.map_err(|e| unavailable(e.without_url()))? {
                    Some(chunk) => bytes.extend_from_slice(&chunk),
                    None => break,
                }
            }
            bytes.truncate(n as usize);
            Ok(Some(bytes))
        };
        let half = self.timeout / 2;
        match tokio::time::timeout(half, attempt()).await {
            Ok(Err(e)) if !e.is_unavailable() => Err(e),
            Ok(Ok(found)) => Ok(found),
            // One retry, as the SDK's calls get, in the other half of the bound.
            _ => tokio::time::timeout(half, attempt())
                .await
                .unwrap_or_else(|_| Err(unavailable(format!("GetObject: no answer within {:?}", self.timeout)))),
        }
    }

    /// A whole object of at most `max` bytes (checked before reading: HeadObject's size is
    /// what the caller verified), of version `etag` when given. `None` when there is no such
    /// object, or no longer that version.
    pub async fn read_all(&self, key: &str, max: u64, etag: Option<&str>) -> Result<Option<Vec<u8>>, StoreError> {
        let res =
            self.client.get_object().bucket(&self.bucket).key(key).set_if_match(etag.map(str::to_owned)).send().await;
        let out = match res {
            Ok(out) => out,
            Err(e) if matches!(status_of(&e), Some(404 | 412)) => return Ok(None),
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

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError { unavailable: true, source: anyhow::anyhow!("GetObject: {e}") }
}

async fn collect(body: ByteStream) -> Result<Vec<u8>, StoreError> {
    match body.collect().await {
        Ok(data) => Ok(data.into_bytes().to_vec()),
        // The connection broke mid-body: the store is (or the network to it is) unavailable.
        Err(e) => Err(StoreError { unavailable: true, source: anyhow::anyhow!("GetObject body: {e}") }),
    }
}

//! Helpers for multipart, POST-policy, batch and idempotency tests: part URLs and part
//! uploads, calls carrying an `Idempotency-Key`, and the store's UploadId from the database.

use serde_json::Value;

use super::app::{Call, TestApp, to_call};

pub const MIB: usize = 1024 * 1024;
/// The smallest part size (R2, S3 and s3s-fs all require it for every part but the last).
pub const PART: usize = 5 * MIB;

/// `n` deterministic, non-repeating-looking bytes (so a misplaced part changes the object).
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed).collect()
}

impl TestApp {
    /// Any call, with an optional `Idempotency-Key` header.
    pub async fn call_keyed(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Call {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        to_call(req.send().await.expect("the broker answers")).await
    }

    /// `POST /v1/uploads/{id}/parts`.
    pub async fn part_urls(&self, owner: &str, id: &str, numbers: Value) -> Call {
        self.post(&format!("/v1/uploads/{id}/parts"), &self.token(owner), serde_json::json!({"part_numbers": numbers}))
            .await
    }

    /// `GET /v1/uploads/{id}/parts`.
    pub async fn listed_parts(&self, owner: &str, id: &str) -> Call {
        self.get(&format!("/v1/uploads/{id}/parts"), &self.token(owner)).await
    }

    /// `DELETE /v1/uploads/{id}`.
    pub async fn abort(&self, owner: &str, id: &str) -> Call {
        self.delete(&format!("/v1/uploads/{id}"), &self.token(owner)).await
    }

    /// Sends `bytes` to one part URL (an element of the `parts` answer) with its headers.
    pub async fn put_part(&self, part: &Value, bytes: Vec<u8>) -> reqwest::Response {
        let mut req = self.http.put(part["url"].as_str().expect("part url"));
        for (name, value) in part["headers"].as_object().expect("part headers") {
            req = req.header(name, value.as_str().unwrap());
        }
        req.body(bytes).send().await.expect("the store answers")
    }

    /// Asks for the URL of each part number, uploads the matching slice of `data`, and
    /// returns each part's ETag.
    pub async fn upload_parts(
        &self,
        owner: &str,
        id: &str,
        part_size: usize,
        data: &[u8],
        numbers: &[usize],
    ) -> Vec<String> {
        let urls = self.part_urls(owner, id, serde_json::json!(numbers)).await;
        assert_eq!(urls.status, 200, "{:#}", urls.body);
        let mut etags = Vec::new();
        for (part, &n) in urls.body["parts"].as_array().unwrap().iter().zip(numbers) {
            let start = (n - 1) * part_size;
            let end = (start + part_size).min(data.len());
            let res = self.put_part(part, data[start..end].to_vec()).await;
            assert_eq!(res.status(), 200, "part {n}");
            etags.push(res.headers()["etag"].to_str().unwrap().to_owned());
        }
        etags
    }

    /// The store's UploadId kept for an intent (None before CreateMultipartUpload).
    pub async fn store_upload_id(&self, id: &str) -> Option<String> {
        let id: uuid::Uuid = id.parse().unwrap();
        self.db.query_one("select multipart_upload_id from uploads where id = $1", &[&id]).await.unwrap().get(0)
    }

    /// The part numbers the store still lists for a multipart upload; an error (s3s-fs
    /// answers 403 for an upload it forgot) counts as none.
    pub async fn store_parts(&self, key: &str, store_upload_id: &str) -> Vec<i32> {
        match self.s3.list_parts().bucket(&self.bucket).key(key).upload_id(store_upload_id).send().await {
            Ok(out) => out.parts().iter().filter_map(|p| p.part_number).collect(),
            Err(_) => Vec::new(),
        }
    }
}

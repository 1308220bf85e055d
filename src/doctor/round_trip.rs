//! A presigned PUT → HEAD → GET → DELETE of a probe object, made with the broker's own
//! presigner and sent by a plain HTTP client with exactly the signed headers, as a browser
//! sends them (`content-length` comes from the body). The PUT is also sent twice: the second
//! must be refused (`If-None-Match: *`), which is what keeps an upload URL single-use. The
//! probe lives under its own prefix and is deleted through the SDK too, whatever failed.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::Finding;
use super::bucket::without_url;
use crate::store::{PresignedRequest, Store};

pub const CHECK: &str = "presigned round trip";
const PROBE_PREFIX: &str = ".r2-broker-doctor/";
const EXPIRES: Duration = Duration::from_secs(300);

pub async fn check(store: &Store, http: &reqwest::Client) -> Vec<Finding> {
    let id = uuid::Uuid::new_v4();
    let key = format!("{PROBE_PREFIX}{id}");
    let body = format!("r2-broker doctor probe {id}\n").into_bytes();
    let trip = steps(store, http, &key, &body).await;
    // Whatever happened above: the probe goes (an object that is not there is not an error).
    let cleanup = match store.delete(&key).await {
        Ok(()) => match store.head(&key).await {
            Ok(None) => None,
            Ok(Some(_)) => Some(format!("the probe {key} is still in the bucket: delete it by hand")),
            Err(e) => Some(format!("cannot confirm the probe {key} is gone ({e}): delete it by hand")),
        },
        Err(e) => Some(format!("the probe {key} could not be deleted ({e}): delete it by hand")),
    };
    let mut findings = vec![trip];
    if let Some(problem) = cleanup {
        findings.push(Finding::warning(CHECK, problem, format!("remove objects under {PROBE_PREFIX} in the bucket")));
    }
    findings
}

async fn steps(store: &Store, http: &reqwest::Client, key: &str, body: &[u8]) -> Finding {
    let p = &store.presigner;
    let now = SystemTime::now();
    let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
    let upload_id = uuid::Uuid::new_v4().to_string();
    let signed = p.put_object(key, "text/plain", Some(body.len() as u64), &upload_id, Some(&checksum), EXPIRES, now);
    let Ok(put) = signed else {
        return Finding::failed(CHECK, "the presigner refuses the probe key", "report a bug");
    };
    let fail = |step: &str, why: String| {
        Finding::failed(
            CHECK,
            format!("{step}: {why}"),
            "the store refuses what the broker presigns: check S3_ENDPOINT is exactly the URL \
             clients use (scheme, host, port: the signed host must match) and S3_REGION",
        )
    };
    match send(http, &put, Some(body.to_vec())).await {
        Ok((200, _)) => {}
        Ok((status, text)) => return fail("PUT", answer(status, &text)),
        Err(e) => return fail("PUT", e),
    }
    let second = match send(http, &put, Some(body.to_vec())).await {
        Ok((412, _)) => None,
        Ok((status, text)) => Some(answer(status, &text)),
        Err(e) => return fail("second PUT", e),
    };
    let head = p.head_object(key, EXPIRES, now).expect("a key the presigner took");
    match send(http, &head, None).await {
        Ok((200, _)) => {}
        Ok((status, _)) => return fail("HEAD", format!("HTTP {status}")),
        Err(e) => return fail("HEAD", e),
    }
    let get = p.get_object(key, None, None, EXPIRES, now).expect("a key the presigner took");
    match send(http, &get, None).await {
        Ok((200, text)) if text.as_bytes() == body => {}
        Ok((200, _)) => return fail("GET", "the body differs from what was PUT".into()),
        Ok((status, text)) => return fail("GET", answer(status, &text)),
        Err(e) => return fail("GET", e),
    }
    let delete = p.delete_object(key, EXPIRES, now).expect("a key the presigner took");
    match send(http, &delete, None).await {
        Ok((200 | 204, _)) => {}
        Ok((status, text)) => return fail("DELETE", answer(status, &text)),
        Err(e) => return fail("DELETE", e),
    }
    if let Some(second) = second {
        return Finding::failed(
            CHECK,
            format!("a second PUT to the same URL was not refused ({second}): upload URLs could overwrite"),
            "use a store that honours `If-None-Match: *` on PutObject (R2 and AWS S3 do)",
        );
    }
    Finding::ok(CHECK, "PUT (signed type, length, checksum, metadata), HEAD, GET, DELETE all accepted")
}

/// Sends `req` with exactly its signed headers; the status and the body as text.
async fn send(http: &reqwest::Client, req: &PresignedRequest, body: Option<Vec<u8>>) -> Result<(u16, String), String> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut b = http.request(method, &req.url);
    for (name, value) in &req.headers {
        // A browser cannot set `content-length` either: the HTTP client sends the body's.
        if name != "content-length" {
            b = b.header(name, value);
        }
    }
    if let Some(body) = body {
        b = b.body(body);
    }
    let resp = b.send().await.map_err(|e| without_url(&e))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| without_url(&e))?;
    Ok((status, text))
}

/// `HTTP 403 SignatureDoesNotMatch`, from an S3 error body.
fn answer(status: u16, body: &str) -> String {
    let code = body.split_once("<Code>").and_then(|(_, rest)| rest.split_once("</Code>")).map(|(c, _)| c);
    match code {
        Some(c) => format!("HTTP {status} {c}"),
        None => format!("HTTP {status}"),
    }
}

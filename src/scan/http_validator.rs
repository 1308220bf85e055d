//! The generic HTTP validator (`BROKER_SCAN_URL`), how moderation services plug in: the
//! broker POSTs `{"url": <presigned GET>, "asset": {id, owner, filename, content_type,
//! size}}` and the validator fetches the object itself (docs/scanning.md).
//!
//! Its answer: 2xx passes; another 4xx rejects (the asset is quarantined with the answer's
//! JSON `reason` or `message`, else the start of its text); 408 and 429 say "later", and
//! 5xx, redirects and transport failures are errors too, so the job is retried — a
//! validator that is down must not pass assets, nor quarantine them.

use anyhow::Context;

use super::{ScanError, ScanTarget, Verdict, describe};

/// A rejection reason keeps at most this many characters (it is stored and reported).
const REASON_MAX: usize = 200;
/// The most of a rejection's body read to find its reason.
const BODY_MAX: usize = 64 * 1024;

pub(super) struct HttpValidator {
    url: reqwest::Url,
    shown: String,
}

impl HttpValidator {
    pub(super) fn new(url: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url).with_context(|| "BROKER_SCAN_URL is not a URL".to_owned())?;
        let host = url.host_str().unwrap_or("");
        let shown = format!("validator {}://{host}{}{}", url.scheme(), port_suffix(&url), url.path());
        Ok(Self { url, shown })
    }

    pub(super) async fn scan(&self, http: &reqwest::Client, target: &ScanTarget<'_>) -> Result<Verdict, ScanError> {
        self.ask(http, target).await.map_err(|why| ScanError(format!("{}: {why}", self.shown)))
    }

    /// How errors name this validator: without credentials or query (a token may sit there).
    pub(super) fn shown(&self) -> &str {
        &self.shown
    }

    async fn ask(&self, http: &reqwest::Client, target: &ScanTarget<'_>) -> Result<Verdict, String> {
        let body = serde_json::json!({
            "url": target.url,
            "asset": {
                "id": target.asset_id,
                "owner": target.owner,
                "filename": target.filename,
                "content_type": target.content_type,
                "size": target.size,
            },
        });
        let response = http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(Verdict::Clean),
            408 | 429 => Err(format!("HTTP {status}: it asks to be tried later")),
            400..=499 => Ok(Verdict::Flagged(reason(status, &read_some(response).await))),
            300..=399 => Err(format!("HTTP {status}: a redirect (not followed: the object's URL goes nowhere else)")),
            _ => Err(format!("HTTP {status}")),
        }
    }
}

fn port_suffix(url: &reqwest::Url) -> String {
    url.port().map(|p| format!(":{p}")).unwrap_or_default()
}

/// The first `BODY_MAX` bytes of a body; what arrived if it breaks off.
async fn read_some(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < BODY_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(BODY_MAX - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// The reason of a rejection: the JSON body's `reason` or `message` string, else its text;
/// on one line, at most `REASON_MAX` characters.
fn reason(status: u16, body: &[u8]) -> String {
    let field = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| ["reason", "message"].into_iter().find_map(|k| v.get(k)?.as_str().map(str::to_owned)));
    let text = field.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let one_line = text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty());
    let mut reason = String::new();
    for word in one_line {
        if !reason.is_empty() {
            reason.push(' ');
        }
        reason.push_str(word);
    }
    match reason.char_indices().nth(REASON_MAX) {
        Some((cut, _)) => reason.truncate(cut),
        None if reason.is_empty() => return format!("rejected by the validator (HTTP {status})"),
        None => {}
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_reason_comes_from_json_then_text_then_the_status() {
        assert_eq!(reason(422, br#"{"reason":"nudity","message":"other"}"#), "nudity");
        assert_eq!(reason(422, br#"{"message":"too\nmany  words"}"#), "too many words");
        assert_eq!(reason(403, br#"{"ok":false}"#), r#"{"ok":false}"#);
        assert_eq!(reason(403, b"  forbidden\r\n"), "forbidden");
        assert_eq!(reason(400, b""), "rejected by the validator (HTTP 400)");
        assert_eq!(reason(400, br#"{"reason":""}"#), "rejected by the validator (HTTP 400)");
        let long = "é".repeat(300);
        assert_eq!(reason(422, long.as_bytes()).chars().count(), REASON_MAX);
    }

    #[test]
    fn errors_show_the_validator_without_credentials_or_query() {
        let v = HttpValidator::new("https://user:pw@mod.example:8443/check?token=secret").unwrap();
        assert_eq!(v.shown(), "validator https://mod.example:8443/check");
    }
}

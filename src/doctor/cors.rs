//! The bucket's CORS rules, read as a browser's preflight would use them: for each app origin
//! (`BROKER_CORS_ORIGINS`, or any origin when it is unset) and each method browsers use, one
//! rule must match the origin, the method and every header the broker signs, and the rule
//! that answers the PUT must expose `ETag` (multipart uploads read each part's ETag).
//! `content-length` is set by the browser itself and is not a CORS header.

use super::{Finding, Outcome, aws_cli_endpoint};
use crate::config::{Config, Provider};
use crate::store::Store;
use crate::store::bucket::CorsRule;

pub const CHECK: &str = "bucket CORS";

/// Headers a browser sends with the broker's presigned PUT: the first three every time,
/// the checksum when the client sends one (our JS client and Uppy 6 do).
const PUT_HEADERS: [&str; 3] = ["content-type", "if-none-match", "x-amz-meta-upload-id"];
const CHECKSUM_HEADER: &str = "x-amz-checksum-sha256";
/// Stands for "any origin" when BROKER_CORS_ORIGINS is unset: only a `*` rule matches it.
const ANY_ORIGIN: &str = "*";

pub async fn check(config: &Config, store: &Store) -> Finding {
    let rules = match store.bucket_cors().await {
        Ok(Some(rules)) => rules,
        Ok(None) => return Finding::failed(CHECK, "the bucket has no CORS rules: browsers cannot upload", fix(config)),
        Err(e) if e.status == Some(501) => {
            return Finding::cannot_check(CHECK, format!("the store does not implement GetBucketCors ({e})"));
        }
        Err(e) => return Finding::cannot_check(CHECK, format!("cannot read the bucket's CORS rules: {e}")),
    };
    let problems = evaluate(&rules, &origins(config), config.s3.provider == Provider::S3);
    let failed = problems.iter().any(|(o, _)| *o == Outcome::Failed);
    let detail = problems.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>().join("; ");
    match problems.first() {
        None => {
            let shown: Vec<_> =
                origins(config).into_iter().map(|o| if o == ANY_ORIGIN { "any origin".into() } else { o }).collect();
            Finding::ok(CHECK, format!("allows what browsers need from {}", shown.join(", ")))
        }
        Some(_) if failed => Finding::failed(CHECK, detail, fix(config)),
        Some(_) => Finding::warning(CHECK, detail, fix(config)),
    }
}

fn origins(config: &Config) -> Vec<String> {
    if config.cors_origins.is_empty() { vec![ANY_ORIGIN.to_owned()] } else { config.cors_origins.clone() }
}

/// What is missing, worst first; empty when the rules allow everything.
pub fn evaluate(rules: &[CorsRule], origins: &[String], post: bool) -> Vec<(Outcome, String)> {
    let mut problems = Vec::new();
    let mut methods = vec!["PUT", "GET", "HEAD"];
    if post {
        methods.push("POST");
    }
    for origin in origins {
        let shown = if origin == ANY_ORIGIN { "any origin" } else { origin.as_str() };
        for method in &methods {
            let needed: &[&str] = if *method == "PUT" { &PUT_HEADERS } else { &[] };
            let Some(rule) = rules.iter().find(|r| matches_request(r, origin, method, needed)) else {
                let why = match rules.iter().find(|r| matches_request(r, origin, method, &[])) {
                    Some(r) => {
                        let missing: Vec<_> = needed.iter().filter(|h| !allows_header(r, h)).copied().collect();
                        format!("{method} from {shown} does not allow the header(s) {}", missing.join(", "))
                    }
                    None if *method == "POST" => format!("POST is not allowed from {shown}: POST-form uploads fail"),
                    None => format!("{method} is not allowed from {shown}"),
                };
                // POST forms are one method among three on S3; PUT and multipart still work.
                problems.push((if *method == "POST" { Outcome::Warning } else { Outcome::Failed }, why));
                continue;
            };
            if *method == "PUT" {
                if !rule.expose_headers.iter().any(|h| h.eq_ignore_ascii_case("etag") || h == "*") {
                    problems.push((
                        Outcome::Failed,
                        format!("ETag is not exposed to {shown}: multipart uploads cannot read part ETags"),
                    ));
                }
                if !allows_header(rule, CHECKSUM_HEADER) {
                    problems.push((
                        Outcome::Warning,
                        format!("{CHECKSUM_HEADER} is not allowed from {shown}: uploads that send a SHA-256 fail"),
                    ));
                }
            }
        }
    }
    problems.sort_by_key(|(o, _)| *o != Outcome::Failed);
    problems
}

fn matches_request(rule: &CorsRule, origin: &str, method: &str, headers: &[&str]) -> bool {
    rule.allowed_origins.iter().any(|o| origin_matches(o, origin))
        && rule.allowed_methods.iter().any(|m| m.eq_ignore_ascii_case(method))
        && headers.iter().all(|h| allows_header(rule, h))
}

/// S3's matching: `*` anywhere in the rule's origin (at most one) matches any text there.
/// "Any origin" is only matched by a rule that allows `*` itself.
fn origin_matches(pattern: &str, origin: &str) -> bool {
    if origin == ANY_ORIGIN {
        return pattern == "*";
    }
    wildcard(&pattern.to_ascii_lowercase(), &origin.to_ascii_lowercase())
}

fn allows_header(rule: &CorsRule, header: &str) -> bool {
    rule.allowed_headers.iter().any(|h| wildcard(&h.to_ascii_lowercase(), header))
}

fn wildcard(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len() && value.starts_with(head) && value.ends_with(tail)
        }
    }
}

/// The rule README.md gives, for this bucket's origins, as an AWS CLI command (R2 takes it
/// on its S3 endpoint too; the Cloudflare dashboard takes the `CORSRules` array).
fn fix(config: &Config) -> String {
    let mut methods = vec!["GET", "PUT", "HEAD"];
    if config.s3.provider == Provider::S3 {
        methods.push("POST");
    }
    let origins = if config.cors_origins.is_empty() { vec!["*".to_owned()] } else { config.cors_origins.clone() };
    let rule = serde_json::json!({"CORSRules": [{
        "AllowedOrigins": origins,
        "AllowedMethods": methods,
        "AllowedHeaders": ["content-type", "if-none-match", "x-amz-meta-upload-id", CHECKSUM_HEADER],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 3600,
    }]});
    format!(
        "aws s3api put-bucket-cors{} --bucket {} --cors-configuration '{rule}'",
        aws_cli_endpoint(config),
        config.s3.bucket
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str], expose: &[&str]) -> CorsRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        CorsRule {
            allowed_origins: v(origins),
            allowed_methods: v(methods),
            allowed_headers: v(headers),
            expose_headers: v(expose),
        }
    }
    const ALL: [&str; 4] = ["content-type", "if-none-match", "x-amz-meta-upload-id", "x-amz-checksum-sha256"];
    const APP: &str = "https://app.example.com";

    #[test]
    fn the_readme_rule_passes_for_its_origin_and_a_wildcard_rule_for_any() {
        let readme = rule(&[APP], &["GET", "PUT", "HEAD"], &ALL, &["ETag"]);
        assert!(evaluate(std::slice::from_ref(&readme), &[APP.into()], false).is_empty());
        let wild = rule(&["*"], &["GET", "PUT", "HEAD", "POST"], &["*"], &["etag"]);
        assert!(evaluate(&[wild], &["*".into(), APP.into()], true).is_empty());
        // A specific-origin rule does not serve "any origin", nor POST when post forms are used.
        assert!(!evaluate(std::slice::from_ref(&readme), &["*".into()], false).is_empty());
        let p = evaluate(&[readme], &[APP.into()], true);
        assert_eq!(p, [(Outcome::Warning, format!("POST is not allowed from {APP}: POST-form uploads fail"))]);
    }

    #[test]
    fn missing_put_headers_and_etag_fail_and_a_missing_checksum_header_warns() {
        let no_put = rule(&["*"], &["GET", "HEAD"], &ALL, &["ETag"]);
        let p = evaluate(&[no_put], &[APP.into()], false);
        assert_eq!(p, [(Outcome::Failed, format!("PUT is not allowed from {APP}"))]);

        let no_etag = rule(
            &["https://*.example.com"],
            &["GET", "PUT", "HEAD"],
            &["content-type", "if-none-match", "x-amz-meta-*"],
            &[],
        );
        let p = evaluate(&[no_etag], &[APP.into()], false);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].0, Outcome::Failed);
        assert!(p[0].1.contains("ETag"));
        assert_eq!(p[1].0, Outcome::Warning);

        let few_headers = rule(&[APP], &["GET", "PUT", "HEAD"], &["content-type"], &["ETag"]);
        let p = evaluate(&[few_headers], &[APP.into()], false);
        assert_eq!(
            p[0],
            (
                Outcome::Failed,
                format!("PUT from {APP} does not allow the header(s) if-none-match, x-amz-meta-upload-id")
            )
        );
    }
}

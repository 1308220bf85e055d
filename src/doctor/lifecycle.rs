//! A lifecycle rule that aborts incomplete multipart uploads: the backstop for uploads that
//! neither the client nor the reaper finished (README: "Lifecycle backstop").

use super::{Finding, aws_cli_endpoint};
use crate::config::Config;
use crate::store::Store;
use crate::store::bucket::LifecycleRule;

pub const CHECK: &str = "lifecycle";

pub async fn check(config: &Config, store: &Store) -> Finding {
    let rules = match store.bucket_lifecycle().await {
        Ok(rules) => rules.unwrap_or_default(),
        Err(e) if e.status == Some(501) => {
            return Finding::cannot_check(CHECK, format!("the store does not implement lifecycle rules ({e})"));
        }
        Err(e) => return Finding::cannot_check(CHECK, format!("cannot read the bucket's lifecycle rules: {e}")),
    };
    let aborting = |r: &&LifecycleRule| r.enabled && r.abort_incomplete_multipart_days.is_some();
    let whole_bucket =
        rules.iter().filter(aborting).find(|r| r.prefix.as_deref().unwrap_or("").is_empty() && !r.other_filter);
    if let Some(r) = whole_bucket {
        let days = r.abort_incomplete_multipart_days.unwrap_or_default();
        let name = r.id.as_deref().map(|id| format!("rule {id:?} ")).unwrap_or_default();
        return Finding::ok(CHECK, format!("{name}aborts incomplete multipart uploads after {days} day(s)"));
    }
    let detail = match rules.iter().find(aborting) {
        Some(r) => format!(
            "the only rule that aborts incomplete multipart uploads covers part of the bucket (prefix {:?}{})",
            r.prefix.as_deref().unwrap_or(""),
            if r.other_filter { ", with a filter" } else { "" }
        ),
        None => "no rule aborts incomplete multipart uploads: parts a lost upload leaves are billed forever".into(),
    };
    let rule = r#"{"Rules":[{"ID":"abort-incomplete-multipart","Status":"Enabled","Filter":{},"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":7}}]}"#;
    Finding::warning(
        CHECK,
        detail,
        format!(
            "aws s3api put-bucket-lifecycle-configuration{} --bucket {} --lifecycle-configuration '{rule}'\n\
             (this replaces the bucket's lifecycle rules: add your other rules to the JSON)",
            aws_cli_endpoint(config),
            config.s3.bucket
        ),
    )
}

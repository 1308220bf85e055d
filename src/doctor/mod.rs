//! `r2-broker doctor`: checks a deployment with the production settings and explains each
//! finding in plain words, with the fix. The groups run side by side — the database in
//! `database.rs`; the bucket, the clock and a presigned round trip in `bucket.rs` and
//! `round_trip.rs`; the bucket's CORS in `cors.rs` and its lifecycle in `lifecycle.rs` —
//! and one failing check never stops the others: a check that needs another's result says
//! "skipped" instead. Every call is bounded by `BROKER_DB_TIMEOUT` / `BROKER_STORE_TIMEOUT`.

mod bucket;
mod cors;
mod database;
mod lifecycle;
mod round_trip;
mod scanners;

use std::fmt::Write as _;

use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Warning,
    Failed,
    /// The store or database does not answer the question (e.g. 501): says why.
    CannotCheck,
    /// Depends on a check that did not pass.
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Failed => "failed",
            Self::CannotCheck => "cannot check",
            Self::Skipped => "skipped",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: &'static str,
    pub outcome: Outcome,
    pub detail: String,
    /// What to do, when not ok: one or two lines.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Ok, detail: detail.into(), fix: None }
    }
    fn warning(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Warning, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn failed(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Failed, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn cannot_check(check: &'static str, why: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::CannotCheck, detail: why.into(), fix: None }
    }
    fn skipped(check: &'static str, why: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Skipped, detail: format!("skipped: {}", why.into()), fix: None }
    }
}

/// Runs every check; the findings come in a fixed order.
pub async fn run(config: &Config) -> Vec<Finding> {
    let database = database::check(config);
    let store = async {
        match Store::new(&config.s3) {
            Ok(store) => store_checks(config, &store).await,
            Err(e) => vec![Finding::failed("store", format!("cannot set up the store client: {e:#}"), "check S3_*")],
        }
    };
    let (mut findings, store, scanners) = tokio::join!(database, store, scanners::check(config));
    findings.extend(store);
    findings.extend(scanners);
    findings
}

async fn store_checks(config: &Config, store: &Store) -> Vec<Finding> {
    let http = match reqwest::Client::builder().timeout(config.s3.timeout).build() {
        Ok(c) => c,
        Err(e) => return vec![Finding::failed("store", format!("cannot set up an HTTP client: {e}"), "report a bug")],
    };
    let (head, clock) = tokio::join!(bucket::reachable(config, store), bucket::clock(config, &http));
    let reachable = head.outcome == Outcome::Ok;
    let mut findings = vec![head, clock];
    if !reachable {
        for check in [round_trip::CHECK, cors::CHECK, lifecycle::CHECK] {
            findings.push(Finding::skipped(check, "the bucket is not reachable"));
        }
        return findings;
    }
    let (trip, cors, lifecycle) =
        tokio::join!(round_trip::check(store, &http), cors::check(config, store), lifecycle::check(config, store));
    findings.extend(trip);
    findings.extend([cors, lifecycle]);
    findings
}

/// `failed` anywhere makes the exit code 1; warnings do not.
pub fn any_failed(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.outcome == Outcome::Failed)
}

/// The report as printed: one line per check, the fix indented below it, a summary last.
pub fn render(config: &Config, findings: &[Finding]) -> String {
    let mut out = format!("r2-broker doctor: bucket {} at {}\n\n", config.s3.bucket, config.s3.endpoint);
    let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    for f in findings {
        let _ = writeln!(out, "{:<12} {:<width$}  {}", f.outcome.label(), f.check, f.detail);
        if let Some(fix) = &f.fix {
            for (i, line) in fix.lines().enumerate() {
                let lead = if i == 0 { "fix:" } else { "" };
                let _ = writeln!(out, "{:<12} {:<width$}  {lead:<4} {line}", "", "");
            }
        }
    }
    let count = |o: Outcome| findings.iter().filter(|f| f.outcome == o).count();
    let _ = writeln!(
        out,
        "\n{} ok, {} warning(s), {} failed, {} not checked",
        count(Outcome::Ok),
        count(Outcome::Warning),
        count(Outcome::Failed),
        count(Outcome::CannotCheck) + count(Outcome::Skipped)
    );
    out
}

/// The AWS CLI's `--endpoint-url` for this store (R2 and other non-AWS stores need it).
fn aws_cli_endpoint(config: &Config) -> String {
    if config.s3.endpoint.ends_with(".amazonaws.com") {
        String::new()
    } else {
        format!(" --endpoint-url {}", config.s3.endpoint)
    }
}

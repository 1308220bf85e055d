//! The delivery worker: due events are claimed in leased batches (src/background.rs), each
//! POSTed outside any transaction within `BROKER_WEBHOOK_TIMEOUT`, and the outcome
//! recorded in one statement:
//! - 2xx: delivered, never sent again;
//! - anything else (another status, a redirect — never followed —, no answer): the next
//!   attempt `min(backoff × 2^(attempts-1), backoff_max)` later, ±20 % jitter so the events
//!   of an endpoint that was down do not all come back at once; after
//!   `BROKER_WEBHOOK_MAX_ATTEMPTS` attempts the event is given up (`failed_at`), listed by
//!   the admin endpoint until retried;
//! - no endpoint (the profile says `webhooks = false`, or none is configured): given up at
//!   once with "no endpoint configured".
//!
//! The endpoint is resolved at delivery, so a changed configuration applies to events
//! already in the outbox. A failed POST is a handled outcome, but a batch where every POST
//! failed ends the pass (the next batch most likely goes to the same dead endpoint).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::background::{Batches, Item, Verdict};
use crate::config::Config;
use crate::db::webhooks::DueEvent;
use crate::error::Error;
use crate::state::AppState;

use super::sign::{self, Signer};

/// The longest `last_error` kept (a receiver's answer can be anything).
const MAX_ERROR_CHARS: usize = 300;
/// What is read of a failed answer's body for `last_error`.
const MAX_BODY_EXCERPT: usize = 200;
/// ±20 %.
const JITTER: f64 = 0.2;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    /// Not accepted (status, redirect or no answer); tried again later.
    pub failed_attempts: u64,
    /// Given up: the last attempt failed, or there is no endpoint.
    pub gave_up: u64,
    /// Not recorded (the database failed, or the delivery did not finish in its bound):
    /// the event comes back when its lease ends.
    pub errors: u64,
    /// Events due when the pass ended (the queue-depth gauge).
    pub due: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    FailedAttempt,
    GaveUp,
    Error { unavailable: bool },
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::FailedAttempt => "failed_attempt",
            Self::GaveUp => "gave_up",
            Self::Error { .. } => "error",
        }
    }
}

impl DeliveryReport {
    fn add(&mut self, o: Outcome) {
        *match o {
            Outcome::Delivered => &mut self.delivered,
            Outcome::FailedAttempt => &mut self.failed_attempts,
            Outcome::GaveUp => &mut self.gave_up,
            Outcome::Error { .. } => &mut self.errors,
        } += 1;
    }
}

/// Claims of 32, 8 POSTs in flight at once, at most 10 claims a pass; one delivery is its
/// POST and one statement.
fn batches(state: &AppState) -> Batches {
    let p = &state.config.processing;
    Batches { size: 32, concurrency: 8, max: 10, bound: p.webhook_timeout + state.db.timeout() * 2 }
}

/// The client every delivery uses: built once per process (its connections are kept
/// alive between deliveries to the same receiver), no redirects followed (a 3xx is a
/// failed attempt: the receiver must name its endpoint), rustls with the platform's roots.
/// Nothing in it depends on the configuration — the timeout is set per request — so one
/// process-wide client needs no field in `AppState`.
fn client() -> Result<&'static reqwest::Client, Error> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let built = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("r2-broker/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| anyhow::anyhow!("building the webhook HTTP client: {e}"))?;
    Ok(CLIENT.get_or_init(|| built))
}

/// One pass over the due events; the tests call it directly.
pub async fn deliver_once(state: &AppState) -> Result<DeliveryReport, Error> {
    let http = client()?;
    let signer = state.config.processing.webhook_secret.as_ref().map(Signer::new).transpose()?;
    let mut report = DeliveryReport::default();
    let record = |item: Item<Outcome>| {
        let o = match item {
            Item::Done(o) => o,
            Item::TimedOut | Item::Skipped => Outcome::Error { unavailable: true },
        };
        report.add(o);
        state.metrics.webhook_deliveries.with_label_values(&[o.label()]).inc();
    };
    let claim = |size, lease| crate::db::webhooks::claim_due(&state.db, size, lease);
    let work = |event| deliver(state, http, signer.as_ref(), event);
    let judge = |o: &Outcome| match o {
        Outcome::Delivered | Outcome::GaveUp => Verdict::Handled,
        Outcome::FailedAttempt | Outcome::Error { unavailable: false } => Verdict::Failed,
        Outcome::Error { unavailable: true } => Verdict::Unavailable,
    };
    batches(state).run(&state.db, claim, work, judge, record).await?;
    report.due = crate::db::webhooks::count_due(&state.db).await?;
    state.metrics.webhook_events_due.set(report.due);
    if report.delivered + report.failed_attempts + report.gave_up + report.errors > 0 {
        tracing::info!(?report, "webhook delivery pass");
    }
    Ok(report)
}

/// The background loop; errors are logged and the next pass tries again.
pub async fn run_forever(state: AppState, every: Duration) {
    crate::background::repeat_passes("webhook delivery", every, || deliver_once(&state)).await
}

/// Where `profile`'s events go (`ProcessingConfig::webhook_endpoint`: its own
/// `webhook_url`, else `BROKER_WEBHOOK_URL`, `None` when it turned events off); a profile no
/// longer configured falls back to `BROKER_WEBHOOK_URL`.
fn endpoint<'a>(config: &'a Config, profile: &str) -> Option<&'a str> {
    match config.profiles.get(profile) {
        Some(p) => config.processing.webhook_endpoint(p),
        None => config.processing.webhook_url.as_deref(),
    }
}

/// The wait before the attempt after attempt number `attempt` (1-based) failed:
/// `min(base × 2^(attempt-1), max)`, scaled by `1 + JITTER × jitter` (`jitter` in -1..=1).
fn retry_delay(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let doubled = base.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(60) as i32);
    Duration::from_secs_f64(doubled.min(max.as_secs_f64()) * (1.0 + JITTER * jitter.clamp(-1.0, 1.0)))
}

/// What came of one POST.
enum Answer {
    Accepted(u16),
    Refused { status: Option<u16>, error: String },
}

async fn deliver(state: &AppState, http: &reqwest::Client, signer: Option<&Signer>, event: DueEvent) -> Outcome {
    let p = &state.config.processing;
    // Config validation requires the secret with any URL; the second case is defensive.
    let (url, signer) = match (endpoint(&state.config, &event.profile), signer) {
        (Some(url), Some(signer)) => (url, signer),
        (None, _) => return give_up(state, &event, "no endpoint configured").await,
        (Some(_), None) => return give_up(state, &event, "no webhook secret configured").await,
    };
    let started = Instant::now();
    let answer = post(http, signer, url, &event, p.webhook_timeout).await;
    state.metrics.webhook_delivery_seconds.observe(started.elapsed().as_secs_f64());
    let (status, error) = match answer {
        Answer::Accepted(status) => {
            tracing::debug!(event_id = %event.id, status, "webhook delivered");
            let result = crate::db::webhooks::mark_delivered(&state.db, &event.owner, event.id, status.into()).await;
            return recorded(&event, result, Outcome::Delivered);
        }
        Answer::Refused { status, error } => (status, error),
    };
    let attempt = u32::try_from(event.attempts).unwrap_or(0).saturating_add(1);
    let retry_in = (attempt < p.webhook_max_attempts).then(|| {
        let jitter = fastrand::f64() * 2.0 - 1.0;
        retry_delay(attempt, p.webhook_backoff, p.webhook_backoff_max, jitter).as_secs_f64()
    });
    tracing::info!(event_id = %event.id, attempt, ?status, %error, ?retry_in, "webhook not accepted");
    let status = status.map(i32::from);
    let result = crate::db::webhooks::record_failure(&state.db, &event.owner, event.id, status, &error, retry_in).await;
    recorded(&event, result, if retry_in.is_some() { Outcome::FailedAttempt } else { Outcome::GaveUp })
}

async fn give_up(state: &AppState, event: &DueEvent, reason: &str) -> Outcome {
    tracing::info!(event_id = %event.id, profile = event.profile, reason, "webhook event given up");
    recorded(event, crate::db::webhooks::give_up(&state.db, &event.owner, event.id, reason).await, Outcome::GaveUp)
}

/// The outcome, once its statement succeeded; the event's lease is its backoff otherwise.
fn recorded(event: &DueEvent, result: Result<(), crate::db::DbError>, outcome: Outcome) -> Outcome {
    match result {
        Ok(()) => outcome,
        Err(e) => {
            tracing::warn!(event_id = %event.id, error = %e, "could not record a webhook delivery");
            Outcome::Error { unavailable: e.is_unavailable() }
        }
    }
}

/// The POST: the stored payload as the body, exactly the bytes signed.
async fn post(http: &reqwest::Client, signer: &Signer, url: &str, event: &DueEvent, timeout: Duration) -> Answer {
    let id = event.id.to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = match signer.sign(&id, timestamp, &event.payload) {
        Ok(s) => s,
        Err(e) => return Answer::Refused { status: None, error: format!("{e:#}") },
    };
    let sent = http
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(sign::ID, &id)
        .header(sign::TIMESTAMP, timestamp.to_string())
        .header(sign::SIGNATURE, signature)
        .body(event.payload.clone())
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => Answer::Accepted(res.status().as_u16()),
        Ok(res) => {
            let status = res.status().as_u16();
            let error = if res.status().is_redirection() {
                format!("status {status}: redirects are not followed")
            } else {
                match excerpt(res).await {
                    text if text.is_empty() => format!("status {status}"),
                    text => format!("status {status}: {text}"),
                }
            };
            Answer::Refused { status: Some(status), error }
        }
        Err(e) => Answer::Refused { status: None, error: transport_error(&e) },
    }
}

/// The first bytes of a refusal's body, as text on one line (within the request's timeout).
async fn excerpt(mut res: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY_EXCERPT {
        match res.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(MAX_BODY_EXCERPT);
    let text = String::from_utf8_lossy(&bytes);
    shorten(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// reqwest's error with its causes (its own text is only "error sending request"), without
/// the URL (which may carry a token).
fn transport_error(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() { "no answer within the timeout".to_owned() } else { String::new() };
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let part = match s.downcast_ref::<reqwest::Error>() {
            Some(re) => re.to_string().replace(&format!(" for url ({})", re.url().map_or("", |u| u.as_str())), ""),
            None => s.to_string(),
        };
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
        source = s.source();
    }
    shorten(&text)
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_from_the_base_up_to_the_maximum() {
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(60));
        let plain: Vec<u64> = (1..=6).map(|a| retry_delay(a, base, max, 0.0).as_secs()).collect();
        assert_eq!(plain, [5, 10, 20, 40, 60, 60]);
        assert_eq!(retry_delay(1, base, max, 1.0), Duration::from_secs(6));
        assert_eq!(retry_delay(1, base, max, -1.0), Duration::from_secs(4));
        assert_eq!(retry_delay(9, base, max, 1.0), Duration::from_secs(72), "jitter applies to the maximum too");
        assert_eq!(retry_delay(u32::MAX, base, max, 0.0), max, "no overflow after many attempts");
    }

    #[test]
    fn errors_are_shortened_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_CHARS + 10);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(short.ends_with('…'));
        assert_eq!(shorten("status 500"), "status 500");
    }
}

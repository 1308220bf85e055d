//! Prometheus metrics, one registry per application (so tests can run several apps in one
//! process). Rendered at `/metrics` in the text format.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub intents_created: IntCounterVec,
    pub bytes_reserved: IntCounter,
    pub uploads_completed: IntCounter,
    pub verification_failures: IntCounterVec,
    pub uploads_ended: IntCounterVec,
    pub reaper_actions: IntCounterVec,
    pub confirm_checks: IntCounterVec,
    /// The ranged GET of `complete`'s content sniffing.
    pub sniff_seconds: Histogram,
    /// Asset jobs: time per step, outcomes per step, and the jobs due now.
    pub job_seconds: HistogramVec,
    pub job_outcomes: IntCounterVec,
    pub jobs_due: IntGauge,
    pub webhook_deliveries: IntCounterVec,
    pub webhook_delivery_seconds: Histogram,
    pub webhook_events_due: IntGauge,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("broker".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route pattern, method and status"),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route pattern")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
            &["route", "method"],
        )?;
        let intents_created = IntCounterVec::new(
            Opts::new("upload_intents_created_total", "Upload intents created, by method"),
            &["method"],
        )?;
        let bytes_reserved = IntCounter::new("bytes_reserved_total", "Bytes reserved against quotas by new intents")?;
        let uploads_completed = IntCounter::new("uploads_completed_total", "Uploads verified and recorded as assets")?;
        let verification_failures = IntCounterVec::new(
            Opts::new("verification_failures_total", "Completes refused because the object did not match, by reason"),
            &["reason"],
        )?;
        let uploads_ended = IntCounterVec::new(
            Opts::new("uploads_ended_total", "Intents ended without an asset, by status"),
            &["status"],
        )?;
        let reaper_actions =
            IntCounterVec::new(Opts::new("reaper_actions_total", "Work done by the reaper, by action"), &["action"])?;
        let confirm_checks = IntCounterVec::new(
            Opts::new(
                "confirm_checks_total",
                "Checks of pending put/post uploads by the background confirmer, by outcome \
                 (confirmed, not_yet, failed, expired, done_elsewhere, error)",
            ),
            &["outcome"],
        )?;
        let sniff_seconds = Histogram::with_opts(
            HistogramOpts::new("sniff_duration_seconds", "The ranged GET of complete's content sniffing")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]),
        )?;
        let job_seconds = HistogramVec::new(
            HistogramOpts::new("job_duration_seconds", "Asset job steps (scan, variants), start to finish")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
            &["step"],
        )?;
        let job_outcomes = IntCounterVec::new(
            Opts::new(
                "job_outcomes_total",
                "Asset job steps by step and outcome (done, quarantined, rejected, retry, gave_up)",
            ),
            &["step", "outcome"],
        )?;
        let jobs_due = IntGauge::new("jobs_due", "Asset jobs due now, as of the job worker's last claim")?;
        registry.register(Box::new(sniff_seconds.clone()))?;
        registry.register(Box::new(job_seconds.clone()))?;
        registry.register(Box::new(jobs_due.clone()))?;
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts by outcome (delivered, failed_attempt, gave_up, error: not recorded)",
            ),
            &["outcome"],
        )?;
        let webhook_delivery_seconds = Histogram::with_opts(
            HistogramOpts::new("webhook_delivery_duration_seconds", "Time of one webhook POST, until its answer")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )?;
        let webhook_events_due = IntGauge::new(
            "webhook_events_due",
            "Webhook events due for delivery, as the last delivery pass left them",
        )?;
        for c in [
            &http_requests,
            &intents_created,
            &verification_failures,
            &uploads_ended,
            &reaper_actions,
            &confirm_checks,
            &job_outcomes,
            &webhook_deliveries,
        ] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(webhook_delivery_seconds.clone()))?;
        registry.register(Box::new(webhook_events_due.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(bytes_reserved.clone()))?;
        registry.register(Box::new(uploads_completed.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            intents_created,
            bytes_reserved,
            uploads_completed,
            verification_failures,
            uploads_ended,
            reaper_actions,
            confirm_checks,
            sniff_seconds,
            job_seconds,
            job_outcomes,
            jobs_due,
            webhook_deliveries,
            webhook_delivery_seconds,
            webhook_events_due,
        })
    }

    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding our own registry into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

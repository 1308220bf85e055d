//! Progress while importing: an `indicatif` bar (bytes/s, ETA) when stderr is a terminal,
//! a plain line every 100 files or 5 seconds otherwise (logs, CI), or nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Lines,
    Off,
}

impl ProgressMode {
    /// A bar on a terminal, plain lines otherwise.
    pub fn for_stderr() -> Self {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) { Self::Bar } else { Self::Lines }
    }
}

const LINE_EVERY_FILES: u64 = 100;
const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub(super) struct Progress(Arc<Inner>);

struct Inner {
    bar: Option<ProgressBar>,
    lines: bool,
    started: Instant,
    bytes: AtomicU64,
    files: AtomicU64,
    /// Files and milliseconds since start at the last plain line.
    last_line: std::sync::Mutex<(u64, u128)>,
    total_files: Option<u64>,
}

impl Progress {
    /// `total`: files and bytes when known up front (a folder), for the ETA.
    pub(super) fn new(mode: ProgressMode, total: Option<(u64, u64)>) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = match total {
                Some((_, bytes)) => ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            let template = if total.is_some() {
                "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}"
            } else {
                "{spinner} {bytes} {bytes_per_sec} {msg}"
            };
            bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self(Arc::new(Inner {
            bar,
            lines: mode == ProgressMode::Lines,
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            last_line: std::sync::Mutex::new((0, 0)),
            total_files: total.map(|t| t.0),
        }))
    }

    pub(super) fn add_bytes(&self, n: u64) {
        self.0.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.0.bar {
            bar.inc(n);
        }
    }

    /// One more item finished (whatever its outcome).
    pub(super) fn file_done(&self) {
        let files = self.0.files.fetch_add(1, Ordering::Relaxed) + 1;
        let of = self.0.total_files.map(|t| format!("/{t}")).unwrap_or_default();
        if let Some(bar) = &self.0.bar {
            bar.set_message(format!("{files}{of} files"));
        }
        if self.0.lines {
            let now = self.0.started.elapsed();
            let mut last = self.0.last_line.lock().expect("not poisoned");
            if files - last.0 >= LINE_EVERY_FILES || now.as_millis() - last.1 >= LINE_EVERY.as_millis() {
                *last = (files, now.as_millis());
                let mib = self.0.bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64;
                let rate = mib / now.as_secs_f64().max(0.001);
                eprintln!("import: {files}{of} files, {mib:.1} MiB, {rate:.1} MiB/s");
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.0.bar {
            bar.finish_and_clear();
        }
    }
}

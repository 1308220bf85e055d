//! The server log as errors quote it: where a start began writing, and its last lines.

use std::fs;
use std::path::Path;
use std::process::Child;

use anyhow::anyhow;

pub(super) fn log_len(log: &Path) -> usize {
    fs::metadata(log).map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX))
}

/// A server that did not come up: stopped, and why, with the log lines it wrote.
pub(super) fn start_failed(child: &mut Child, e: Option<anyhow::Error>, log: &Path, from: usize) -> anyhow::Error {
    let _ = child.kill();
    let _ = child.wait();
    let why = e.map_or("exited during startup".into(), |e| format!("{e:#}"));
    anyhow!("PostgreSQL {why}; {}", log_tail(log, from))
}

/// The log's last lines written since offset `from`, for error messages.
pub(super) fn log_tail(log: &Path, from: usize) -> String {
    let bytes = fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(bytes.get(from..).unwrap_or_default());
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("{}:\n{tail}", log.display())
}

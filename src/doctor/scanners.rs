//! The scanners profiles name: clamd answers (and with which signature database), the
//! HTTP validator is configured. A scan job that cannot reach its scanner retries for
//! hours and then quarantines the asset; this says so before the first upload does.

use std::time::Duration;

use super::Finding;
use crate::config::Config;
use crate::profiles::ScannerKind;
use crate::scan::Scanners;

pub const CHECK: &str = "scanners";

pub async fn check(config: &Config) -> Option<Finding> {
    let used: Vec<&str> = config
        .profiles
        .iter()
        .filter(|p| p.processing.scan.contains(&ScannerKind::Clamd))
        .map(|p| p.name.as_str())
        .collect();
    let scanners = match Scanners::new(&config.processing) {
        Ok(s) => s,
        Err(e) => {
            return Some(Finding::failed(CHECK, format!("cannot set up the scanners: {e:#}"), "check BROKER_SCAN_*"));
        }
    };
    let limit = config.processing.scan_timeout.min(Duration::from_secs(5));
    match scanners.clamd_version(limit).await? {
        Ok(version) => Some(Finding::ok(CHECK, format!("clamd answers: {version} (profiles: {})", used.join(", ")))),
        Err(why) => Some(Finding::failed(
            CHECK,
            format!("{why}; profiles {} scan with it", used.join(", ")),
            "start clamd where BROKER_CLAMD points (docs/scanning.md); until it answers, their uploads stay processing",
        )),
    }
}

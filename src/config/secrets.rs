//! Secrets given directly or as files: every secret variable `NAME` also accepts
//! `NAME_FILE`, the path of a file holding it, as container platforms (Docker and
//! Kubernetes secrets, systemd credentials) mount them.

use std::path::PathBuf;

use super::{ConfigError, bad};

/// The secret from `NAME` or from the file `NAME_FILE` names; trailing newlines (`\n`,
/// `\r\n`) are dropped, as `echo … > file` adds one. Both set is an error naming both.
pub(super) fn secret(
    value: &Option<String>,
    file: &Option<PathBuf>,
    variable: &'static str,
    file_variable: &'static str,
) -> Result<Option<String>, ConfigError> {
    let value = value.as_deref().filter(|v| !v.is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(bad(file_variable, format!("{variable} and {file_variable} are both set; set one"))),
        (Some(v), None) => Ok(Some(v.to_owned())),
        (None, None) => Ok(None),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad(file_variable, format!("cannot read {}: {e}", path.display())))?;
            let text = text.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                return Err(bad(file_variable, format!("{} is empty", path.display())));
            }
            Ok(Some(text.to_owned()))
        }
    }
}

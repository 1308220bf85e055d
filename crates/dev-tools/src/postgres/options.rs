//! Extra server settings, pg_hba lines and files for one start of a private cluster
//! ([`PrivatePostgres::start_with`](super::PrivatePostgres::start_with)): what a test needs
//! for, e.g., a TLS-only server. Nothing of it persists in the cluster's configuration: the
//! settings are `-c` flags and the pg_hba lines go into a file of their own (`hba_file`), so
//! the next plain `start` of the same folder behaves as before.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use anyhow::{Context as _, ensure};

use super::Cluster;

#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    settings: Vec<(String, String)>,
    hba: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
}

impl ServerOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// `-c name=value` on the postmaster's command line (e.g. `ssl`, `on`).
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A pg_hba.conf line (e.g. `hostssl all all 127.0.0.1/32 trust`). With any, they replace
    /// the cluster's pg_hba.conf for this start, after `local all all trust` (the cluster's
    /// own setup talks over the unix socket).
    pub fn hba_line(mut self, line: &str) -> Self {
        self.hba.push(line.to_owned());
        self
    }

    /// A file written into the data directory, where relative paths in settings resolve
    /// (`ssl_key_file=server.key`): mode 0600, owned by the server's user, as PostgreSQL
    /// wants a key file.
    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.to_owned(), contents.into()));
        self
    }
}

impl Cluster {
    /// Writes the files and the pg_hba file; the postmaster's extra arguments.
    pub(super) fn apply(&self, options: &ServerOptions) -> anyhow::Result<Vec<OsString>> {
        let mut args = Vec::new();
        for (name, contents) in &options.files {
            ensure!(!name.contains('/') && !name.starts_with('.'), "file name {name:?}: a plain name");
            self.private_file(name, contents)?;
        }
        if !options.hba.is_empty() {
            let mut text = String::from("local all all trust\n");
            options.hba.iter().for_each(|line| text.extend([line.as_str(), "\n"]));
            self.private_file("pg_hba.options.conf", text.as_bytes())?;
            args.extend(["-c".into(), format!("hba_file={}", self.data.join("pg_hba.options.conf").display()).into()]);
        }
        for (name, value) in &options.settings {
            args.extend(["-c".into(), format!("{name}={value}").into()]);
        }
        Ok(args)
    }

    fn private_file(&self, name: &str, contents: &[u8]) -> anyhow::Result<()> {
        let path = self.data.join(name);
        let _ = fs::remove_file(&path); // a 0600 file of another owner cannot be rewritten
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
        Ok(())
    }
}

//! `r2-broker dev`'s data dir: the credentials it generates on first run (`dev.json`, mode
//! 0600) and the folder of its private PostgreSQL cluster.

use std::fs;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// `<data dir>/dev.json`, mode 0600.
#[derive(Serialize, Deserialize)]
pub struct DevFile {
    /// Ties a PostgreSQL cluster kept outside the data dir to this data dir's lifetime.
    pub instance_id: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    pub jwt_secret: String,
    pub created_at: String,
}

impl DevFile {
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join("dev.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file = serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged: fix it, or delete the data dir to start over", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        Ok(Some(file))
    }

    /// Fresh random credentials, written to `<dir>/dev.json`.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let hex = || uuid::Uuid::new_v4().simple().to_string(); // 122 random bits each
        let file = Self {
            instance_id: uuid::Uuid::new_v4().to_string(),
            s3_access_key_id: format!("R2BDEV{}", hex()[..14].to_ascii_uppercase()),
            s3_secret_access_key: (hex() + &hex())[..40].to_owned(),
            jwt_secret: hex() + &hex(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        // Written whole, then renamed: a crash never leaves half a file.
        let (path, tmp) = (dir.join("dev.json"), dir.join(".dev.json.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut out = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        out.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
        out.sync_all()?;
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(file)
    }
}

/// Where the private cluster lives: `<data dir>/postgres`, unless we are root (PostgreSQL then
/// runs as `postgres`) and that user cannot reach it, e.g. a checkout under /root (0700). Then
/// a folder under /var/tmp named after the data dir's path, reused while dev.json lives.
/// Returns the folder and a note for the banner when it is not the usual one.
pub fn postgres_dir(data_dir: &Path, instance: &str) -> anyhow::Result<(PathBuf, String)> {
    let local = data_dir.join("postgres");
    if local.join("data/PG_VERSION").exists() || reachable_by_postgres(data_dir) {
        return Ok((local, String::new()));
    }
    let dir = fallback_dir("r2-broker-pg", data_dir);
    let marker = dir.join("instance");
    match fs::symlink_metadata(&dir) {
        Ok(m) => {
            ensure!(m.is_dir() && m.uid() == 0, "{} exists and is not ours: remove it", dir.display());
            if fs::read_to_string(&marker).unwrap_or_default().trim() != instance {
                // Left by an earlier data dir at this path that was deleted since: start over.
                tracing::info!(dir = %dir.display(), "removing the PostgreSQL cluster of a deleted data dir");
                fs::remove_dir_all(&dir)?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    if !dir.exists() {
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        fs::write(&marker, instance)?;
    }
    let note = format!(
        "\n              (not in the data dir: the `postgres` user, as which PostgreSQL runs, cannot enter\n              \
         {}; this cluster is reused while its dev.json lives)",
        data_dir.display()
    );
    Ok((dir, note))
}

/// Whether a cluster under `dir` can run: always unless we are root, as root only when every
/// parent folder lets others (the `postgres` user) through.
pub(crate) fn reachable_by_postgres(dir: &Path) -> bool {
    let world_traversable = |d: &Path| d.ancestors().all(|a| fs::metadata(a).is_ok_and(|m| m.mode() & 0o001 != 0));
    let euid = fs::metadata("/proc/self").map(|m| m.uid()).ok();
    euid != Some(0) || world_traversable(dir)
}

/// `/var/tmp/<prefix>-<hash of path>` (the temp dir when there is no /var/tmp): one folder per
/// `path`, reachable by `postgres`.
pub(crate) fn fallback_dir(prefix: &str, path: &Path) -> PathBuf {
    let hash = hex::encode(&sha2::Sha256::digest(path.as_os_str().as_bytes())[..8]);
    let base = Path::new("/var/tmp");
    let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
    base.join(format!("{prefix}-{hash}"))
}

/// `path` made absolute (not canonical: it may not exist yet).
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.as_os_str().is_empty() {
        bail!("--data-dir must not be empty");
    }
    Ok(std::path::absolute(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_file_is_private_and_random() {
        let dir = std::env::temp_dir().join(format!("r2b-devfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert!(DevFile::load(&dir).unwrap().is_none());
        let created = DevFile::create(&dir).unwrap();
        assert_eq!(fs::metadata(dir.join("dev.json")).unwrap().mode() & 0o777, 0o600);
        let loaded = DevFile::load(&dir).unwrap().unwrap();
        assert_eq!((loaded.jwt_secret.len(), loaded.s3_secret_access_key.len()), (64, 40));
        assert_eq!(loaded.jwt_secret, created.jwt_secret);
        assert_ne!(DevFile::create(&dir).unwrap().jwt_secret, created.jwt_secret); // random
        fs::remove_dir_all(&dir).unwrap();
    }
}

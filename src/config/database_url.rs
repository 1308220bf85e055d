//! DATABASE_URL's TLS parameters, read as libpq reads them. tokio-postgres parses `sslmode`
//! only as disable/prefer/require (it refuses verify-ca/verify-full) and knows no
//! `sslrootcert`, so both are taken out here, from either form a provider hands out
//! (`postgres://…?sslmode=…` or `host=… sslmode=…`), and the rest goes to tokio-postgres
//! unchanged. `db::tls` turns the result into a rustls configuration.

use std::fmt;
use std::path::PathBuf;

/// libpq's `sslmode`. The default is `prefer`, as libpq's: TLS when the server offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        })
    }
}

/// Where the certificates that may sign the server's come from (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// `sslrootcert=system` (as libpq ≥ 16), or verify-ca/verify-full without `sslrootcert`.
    System,
    /// A PEM file of one or more CA certificates (a provider's bundle).
    File(PathBuf),
}

/// DATABASE_URL, parsed.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    /// Everything but the TLS parameters; its `ssl_mode` is what tokio-postgres negotiates
    /// (verify-ca/verify-full negotiate as `require`; the verification is rustls').
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    /// `sslrootcert`, when the URL has one.
    pub root_certs: Option<RootCerts>,
}

impl DatabaseUrl {
    /// Parses either form; the error is the reason, for a message naming DATABASE_URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (rest, params) = match ["postgres://", "postgresql://"].iter().find(|p| url.starts_with(*p)) {
            Some(_) => split_url(url),
            None => split_key_values(url)?,
        };
        let mut ssl_mode = None;
        let mut root = None;
        for (key, value) in params {
            match key.as_str() {
                "sslmode" => ssl_mode = Some(value),
                "sslrootcert" => root = Some(value),
                client_cert => {
                    return Err(format!(
                        "{client_cert}: client certificates are not supported; use password authentication over TLS"
                    ));
                }
            }
        }
        let ssl_mode = match ssl_mode.as_deref() {
            None => None,
            Some("disable") => Some(SslMode::Disable),
            Some("prefer") => Some(SslMode::Prefer),
            Some("require") => Some(SslMode::Require),
            Some("verify-ca") => Some(SslMode::VerifyCa),
            Some("verify-full") => Some(SslMode::VerifyFull),
            Some("allow") => return Err("sslmode=allow (plain text first) is not supported: use prefer".into()),
            Some(other) => {
                return Err(format!(
                    "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                ));
            }
        };
        let root_certs = match root.as_deref() {
            None | Some("") => None,
            Some("system") => Some(RootCerts::System),
            Some(path) => Some(RootCerts::File(path.into())),
        };
        // libpq ≥ 16: the system's roots mean a public CA, which signs for anyone who owns a
        // domain, so only a host name check makes them mean anything.
        let ssl_mode = match (ssl_mode, &root_certs) {
            (None, Some(RootCerts::System)) => SslMode::VerifyFull,
            (Some(mode), Some(RootCerts::System)) if mode != SslMode::VerifyFull => {
                return Err(format!("sslrootcert=system needs sslmode=verify-full (not {mode}), as in libpq"));
            }
            (mode, _) => mode.unwrap_or(SslMode::Prefer),
        };
        let mut config: tokio_postgres::Config = rest.parse().map_err(|e: tokio_postgres::Error| {
            let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
            format!("is not a valid PostgreSQL URL or connection string ({why})")
        })?;
        config.ssl_mode(match ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        Ok(Self { config, ssl_mode, root_certs })
    }
}

/// The parameters taken out of DATABASE_URL and handled here: libpq's client-certificate
/// ones are refused by name rather than as tokio-postgres' "unknown option".
const TLS_PARAMS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword"];

type Params = Vec<(String, String)>;

/// `postgres://…?a=b&sslmode=…`: the URL without the TLS parameters, and those. The query
/// starts at the first `?` after the first `@`, where tokio-postgres' own parser finds it.
fn split_url(url: &str) -> (String, Params) {
    let after_creds = url.find('@').map_or(0, |at| at + 1);
    let Some(q) = url[after_creds..].find('?').map(|q| after_creds + q) else { return (url.to_owned(), vec![]) };
    let (mut kept, mut taken) = (Vec::new(), Vec::new());
    for pair in url[q + 1..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key);
        if TLS_PARAMS.contains(&key.as_str()) {
            taken.push((key, decode(value)));
        } else {
            kept.push(pair);
        }
    }
    let mut rest = url[..q].to_owned();
    if !kept.is_empty() {
        rest = format!("{rest}?{}", kept.join("&"));
    }
    (rest, taken)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// `host=… sslmode=…` (values optionally in single quotes, `\` escapes): the string without
/// the TLS parameters, and those. Tokenised as tokio-postgres does.
fn split_key_values(s: &str) -> Result<(String, Params), String> {
    let (mut kept, mut taken) = (Vec::new(), Vec::new());
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| !c.is_whitespace() && c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("is not a valid PostgreSQL URL or connection string (no `=` after {key:?})"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\'') if quoted => break,
                Some(c) if c.is_whitespace() && !quoted => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
                None if quoted => return Err("has an unterminated quoted value".into()),
                None => break,
            }
        }
        if TLS_PARAMS.contains(&key.as_str()) {
            taken.push((key, value));
        } else {
            kept.push(format!("{key}='{}'", value.replace('\\', "\\\\").replace('\'', "\\'")));
        }
    }
    Ok((kept.join(" "), taken))
}

#[cfg(test)]
mod tests;

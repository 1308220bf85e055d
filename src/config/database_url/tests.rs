use super::*;

fn parse(url: &str) -> DatabaseUrl {
    DatabaseUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[test]
fn without_sslmode_the_mode_is_prefer_as_in_libpq() {
    let url = parse("postgres://u:p@db.example.com:6543/app");
    assert_eq!((url.ssl_mode, url.root_certs), (SslMode::Prefer, None));
    assert_eq!(url.config.get_ssl_mode(), tokio_postgres::config::SslMode::Prefer);
    assert_eq!(url.config.get_dbname(), Some("app"));
}

#[test]
fn verify_modes_are_taken_out_of_a_url_and_negotiate_as_require() {
    let url = parse("postgresql://u:p%3F%40@h/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fca%20b.pem");
    assert_eq!(url.ssl_mode, SslMode::VerifyFull);
    assert_eq!(url.root_certs, Some(RootCerts::File("/ca b.pem".into())));
    assert_eq!(url.config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    assert_eq!(url.config.get_application_name(), Some("x"));
    assert_eq!(url.config.get_password(), Some(&b"p?@"[..]));
    assert_eq!(parse("postgres://h/db?sslmode=verify-ca").ssl_mode, SslMode::VerifyCa);
    assert_eq!(
        parse("postgres://h/db?sslmode=disable").config.get_ssl_mode(),
        tokio_postgres::config::SslMode::Disable
    );
}

#[test]
fn key_value_form_keeps_quoted_values_and_takes_the_tls_ones_out() {
    let url = parse(r"host=h password='it\'s x' sslmode = verify-ca sslrootcert='/a dir/ca.pem' dbname=app");
    assert_eq!(url.ssl_mode, SslMode::VerifyCa);
    assert_eq!(url.root_certs, Some(RootCerts::File("/a dir/ca.pem".into())));
    assert_eq!(url.config.get_dbname(), Some("app"));
    let url = parse(r"host=h password='a \' b\\c' sslmode=require");
    assert_eq!(url.config.get_password(), Some(&br"a ' b\c"[..]));
    assert_eq!(url.config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
}

#[test]
fn sslrootcert_system_means_verify_full_and_refuses_weaker_modes() {
    let url = parse("postgres://h/db?sslrootcert=system");
    assert_eq!((url.ssl_mode, url.root_certs), (SslMode::VerifyFull, Some(RootCerts::System)));
    let err = DatabaseUrl::parse("postgres://h/db?sslrootcert=system&sslmode=require").unwrap_err();
    assert!(err.contains("sslrootcert=system needs sslmode=verify-full"), "{err}");
}

#[test]
fn bad_values_are_refused_with_the_reason() {
    for (url, want) in [
        ("postgres://h/db?sslmode=verify_full", "is not one of disable, prefer"),
        ("postgres://h/db?sslmode=allow", "sslmode=allow"),
        ("host=h sslcert=/c.pem", "sslcert: client certificates are not supported"),
        ("postgres://h/db?sslkey=%2Fk.pem", "sslkey: client certificates"),
        ("postgres://h/db?nonsense=1", "unknown option `nonsense`"),
        ("host=h password='open", "unterminated"),
        ("not a url::", "not a valid PostgreSQL URL"),
    ] {
        let err = DatabaseUrl::parse(url).unwrap_err();
        assert!(err.contains(want), "{url}: {err}");
    }
}

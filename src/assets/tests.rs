//! Content-Disposition, cursors and public URLs.
use super::*;

#[test]
fn content_disposition_is_rfc6266_with_rfc5987_filename() {
    assert_eq!(
        content_disposition(Disposition::Inline, "IMG_0001.HEIC"),
        "inline; filename=\"IMG_0001.HEIC\"; filename*=UTF-8''IMG_0001.HEIC"
    );
    assert_eq!(
        content_disposition(Disposition::Attachment, "résumé 2024.pdf"),
        "attachment; filename=\"r_sum_ 2024.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%202024.pdf"
    );
}

#[test]
fn content_disposition_cannot_be_injected() {
    let cd = content_disposition(Disposition::Inline, "a\"; filename=evil.html\r\nSet-Cookie: x=1\\%41.txt");
    assert!(!cd.contains('\r') && !cd.contains('\n'), "{cd}");
    let quoted = cd.split('"').nth(1).unwrap();
    // CR and LF are controls: dropped before either form is built.
    assert_eq!(quoted, "a_; filename=evil.htmlSet-Cookie: x=1__41.txt");
    assert_eq!(cd.matches('"').count(), 2, "{cd}");
    assert!(cd.ends_with("filename*=UTF-8''a%22%3B%20filename%3Devil.htmlSet-Cookie%3A%20x%3D1%5C%2541.txt"));
}

#[test]
fn format_controls_are_dropped_from_filenames() {
    // U+202E (right-to-left override) would show "invoice\u{202E}fdp.exe" as "invoiceexe.pdf".
    let cd = content_disposition(Disposition::Attachment, "invoice\u{202E}fdp.exe");
    assert_eq!(cd, "attachment; filename=\"invoicefdp.exe\"; filename*=UTF-8''invoicefdp.exe");
    for c in ['\u{200B}', '\u{200E}', '\u{2066}', '\u{2069}', '\u{FEFF}', '\u{00AD}', '\u{2028}', '\u{1}'] {
        let cd = content_disposition(Disposition::Inline, &format!("a{c}b.png"));
        assert_eq!(cd, "inline; filename=\"ab.png\"; filename*=UTF-8''ab.png", "{:?}", c);
    }
    // Letters of any script stay.
    assert!(content_disposition(Disposition::Inline, "שלום.png").ends_with("%D7%A9%D7%9C%D7%95%D7%9D.png"));
    assert!(content_disposition(Disposition::Inline, "\u{202E}").contains("filename=\"download\""));
}

#[test]
fn cursors_round_trip_and_reject_garbage() {
    let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
    let id = Uuid::new_v4();
    assert_eq!(decode_cursor(&encode_cursor(t, id)), Some((t, id)));
    for bad in ["", "!!", "bm90LWEtY3Vyc29y", &URL_SAFE_NO_PAD.encode("12.notauuid")] {
        assert_eq!(decode_cursor(bad), None, "{bad}");
    }
}

#[test]
fn public_urls_percent_encode_each_segment() {
    assert_eq!(
        public_url("https://cdn.example.com", "photos/a~2Fb/id/my file+1.jpg"),
        "https://cdn.example.com/photos/a~2Fb/id/my%20file%2B1.jpg"
    );
}

/// Decodes an RFC 5987 `filename*` value.
fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v).decode_utf8().unwrap().into_owned()
}

proptest::proptest! {
    /// Any filename: the header has no control character, exactly one quoted fallback,
    /// and `filename*` decodes back to the name minus the characters not shown.
    #[test]
    fn any_filename_gives_a_safe_header_that_round_trips(
        name in proptest::string::string_regex("(?s).{1,100}").unwrap(),
        inline in proptest::bool::ANY,
    ) {
        let d = if inline { Disposition::Inline } else { Disposition::Attachment };
        let cd = content_disposition(d, &name);
        proptest::prop_assert!(cd.bytes().all(|b| b == b' ' || b.is_ascii_graphic()), "{}", cd);
        proptest::prop_assert_eq!(cd.matches('"').count(), 2);
        let (_, encoded) = cd.split_once("filename*=UTF-8''").unwrap();
        let shown: String = name.chars().filter(|c| is_shown(*c)).collect();
        let want = if shown.is_empty() { "download".to_owned() } else { shown };
        proptest::prop_assert_eq!(percent_decode(encoded), want);
        proptest::prop_assert!(actix_web::http::header::HeaderValue::from_str(&cd).is_ok());
    }
}

//! The content type of a file from its name and its first bytes.
//!
//! The bytes win when both say something, because a renamed file (`photo.png` holding a
//! JPEG) must be declared as what it is: a profile that sniffs refuses anything else. Text is
//! the exception: magic numbers cannot tell text formats apart (`infer` calls an SVG
//! `text/xml` and knows no CSV), so a text type from either side keeps the extension's.

/// Enough for every signature `infer` knows.
pub const HEAD_LEN: usize = 8192;

pub fn detect(name: &str, head: &[u8]) -> String {
    let by_name = mime_guess::from_path(name).first();
    let by_bytes = infer::get(head).map(|t| t.mime_type());
    match (by_name, by_bytes) {
        (Some(n), Some(b)) if n.type_() == mime_guess::mime::TEXT || b.starts_with("text/") => {
            n.essence_str().to_owned()
        }
        (_, Some(b)) => b.to_owned(),
        (Some(n), None) => n.essence_str().to_owned(),
        (None, None) => "application/octet-stream".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::detect;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn the_bytes_win_over_the_extension() {
        assert_eq!(detect("a/b/photo.png", JPEG), "image/jpeg");
        assert_eq!(detect("photo.jpg", PNG), "image/png");
        assert_eq!(detect("noext", PNG), "image/png");
    }

    #[test]
    fn the_extension_decides_for_text_and_unknown_bytes() {
        assert_eq!(detect("notes.txt", b"plain words"), "text/plain");
        assert_eq!(detect("table.csv", b"a,b\n1,2\n"), "text/csv");
        assert_eq!(detect("logo.svg", b"<?xml version=\"1.0\"?><svg/>"), "image/svg+xml");
        assert_eq!(detect("data.json", b"{\"a\":1}"), "application/json");
    }

    #[test]
    fn nothing_known_is_octet_stream() {
        assert_eq!(detect("blob", b"\x01\x02\x03"), "application/octet-stream");
        assert_eq!(detect("empty", b""), "application/octet-stream");
    }
}

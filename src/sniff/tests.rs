//! Sniffing against real file signatures (built here byte for byte, as the formats define them).
use super::check;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0";
const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
const ZIP: &[u8] = b"PK\x03\x04\x14\0\0\0\x08\0";

fn mp4(brand: &[u8; 4]) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 0x18];
    b.extend_from_slice(b"ftyp");
    b.extend_from_slice(brand);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(b"isommp42");
    b
}

#[test]
fn matching_signatures_pass() {
    assert_eq!(check("image/png", PNG), Ok(()));
    assert_eq!(check("image/jpeg", JPEG), Ok(()));
    assert_eq!(check("image/jpg", JPEG), Ok(()), "alias");
    assert_eq!(check("image/gif", GIF), Ok(()));
    assert_eq!(check("application/pdf", PDF), Ok(()));
    assert_eq!(check("video/mp4", &mp4(b"isom")), Ok(()));
    assert_eq!(check("audio/mp4", &mp4(b"M4A ")), Ok(()), "an MP4 with an audio brand");
    assert_eq!(check("audio/x-m4a", &mp4(b"isom")), Ok(()), "one ISO-BMFF family");
    assert_eq!(check("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ZIP), Ok(()));
}

#[test]
fn html_declared_as_an_image_is_refused_with_what_it_is() {
    for page in
        [&b"<!DOCTYPE html><html><body>hi"[..], b"\xef\xbb\xbf  \n<html>", b"<script>alert(1)</script>", b"<HTML >x"]
    {
        assert_eq!(check("image/png", page), Err("content is text/html, declared image/png".into()), "{page:?}");
    }
    assert_eq!(
        check("image/jpeg", b"<svg xmlns='http://www.w3.org/2000/svg'>"),
        Err("content is image/svg+xml, declared image/jpeg".into())
    );
    assert_eq!(
        check("application/octet-stream", b"<?xml version='1.0'?><x/>"),
        Err("content is text/xml, declared application/octet-stream".into())
    );
    // `<a` needs a space or `>` after it: `<abc` is no HTML tag.
    assert_eq!(check("application/octet-stream", b"<abc"), Ok(()));
}

#[test]
fn other_binary_formats_are_named() {
    assert_eq!(check("image/png", JPEG), Err("content is image/jpeg, declared image/png".into()));
    assert_eq!(check("image/png", PDF), Err("content is application/pdf, declared image/png".into()));
    assert_eq!(check("audio/mpeg", ZIP), Err("content is application/zip, declared audio/mpeg".into()));
    assert_eq!(check("image/png", b"just some words"), Err("content is not recognisable as image/png".into()));
    assert_eq!(check("image/png", b""), Err("the object is empty, declared image/png".into()));
}

#[test]
fn text_is_text_whatever_its_words() {
    assert_eq!(check("text/plain", b"hello, world\n"), Ok(()));
    assert_eq!(check("text/csv", "a,b\n\u{e9},\u{1f600}\n".as_bytes()), Ok(()));
    assert_eq!(check("text/plain", b"<html><body>a page, shown as text</body></html>"), Ok(()));
    assert_eq!(check("text/plain", b"\xff\xfeh\0i\0"), Ok(()), "UTF-16 with its BOM");
    assert_eq!(check("text/plain", PNG), Err("content is image/png, declared text/plain".into()));
    assert!(check("text/plain", b"abc\0\x01\x02def").unwrap_err().contains("binary bytes"));
}

#[test]
fn types_nothing_recognises_pass_unless_they_are_markup() {
    assert_eq!(check("application/json", b"{\"a\": 1}"), Ok(()));
    assert_eq!(check("application/x-custom", PNG), Ok(()));
    assert_eq!(check("application/octet-stream", b"\0\x01\x02"), Ok(()));
    assert_eq!(check("text/html", b"<!doctype html><p>"), Ok(()), "a profile that allows HTML");
    assert_eq!(check("image/svg+xml", b"<svg>"), Ok(()));
}

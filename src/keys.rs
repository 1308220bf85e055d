//! Object keys. The broker builds every key itself from the profile's prefix, an encoding
//! of the owner, the upload id and a sanitised filename; client input never becomes a raw
//! key, so no key can escape its owner's folder (s3s-fs even maps keys to file paths).

use uuid::Uuid;

use crate::limits::MAX_KEY_LEN;

/// The owner as one key segment: bytes outside `A-Z a-z 0-9 _ -` become `~XX` (uppercase
/// hex). One-to-one (decodable, and `~` itself is escaped) and never contains `/` or `.`,
/// so it can be neither `..` nor a path of several segments.
pub fn owner_segment(owner: &str) -> String {
    let mut out = String::with_capacity(owner.len());
    for b in owner.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

/// openapi.yaml's rule: ASCII letters, digits and `.-_` are kept, every other character becomes
/// one `_`, a leading `.` becomes `_`. In addition a `.` right after a `.` becomes `_`, so
/// a key never contains `..` (openapi.yaml records this resolution).
pub fn sanitise_filename(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let keep = c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
        let c = if !keep || (c == '.' && (out.is_empty() || out.ends_with('.'))) { '_' } else { c };
        out.push(c);
    }
    out
}

/// `<prefix>/<owner segment>/<upload id>/<sanitised filename>`, the name shortened (keeping
/// its extension) only when the whole key would pass 1,024 bytes.
pub fn object_key(prefix: &str, owner: &str, upload_id: Uuid, filename: &str) -> String {
    let head = format!("{prefix}/{}/{upload_id}/", owner_segment(owner));
    let name = sanitise_filename(filename);
    let room = MAX_KEY_LEN.saturating_sub(head.len()).max(1);
    format!("{head}{}", shorten(&name, room))
}

/// Shortens an ASCII name to `max` bytes, keeping the extension when it is short enough to
/// leave some of the stem.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot < max => {
            let ext = &name[dot..];
            // A cut stem may end in `.`: with the extension's `.` that would make `..`.
            let stem = name[..max - ext.len()].trim_end_matches('.');
            if stem.is_empty() { name[..max].to_owned() } else { format!("{stem}{ext}") }
        }
        _ => name[..max].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_owner(seg: &str) -> String {
        let bytes = seg.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'~' {
                out.push(u8::from_str_radix(&seg[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn owner_segment_is_one_to_one_and_cannot_escape() {
        for owner in ["alice", "user-1_x", "a/b", "..", ".", "~7E", "a~b", "ユーザー", "a b\n", "auth0|123@x.com"] {
            let seg = owner_segment(owner);
            assert!(!seg.contains('/') && !seg.contains('.'), "{owner:?} -> {seg}");
            assert!(!seg.is_empty());
            assert_eq!(decode_owner(&seg), owner, "decodes back");
        }
        assert_eq!(owner_segment("alice"), "alice");
        assert_eq!(owner_segment(".."), "~2E~2E");
        assert_ne!(owner_segment("~7E"), owner_segment("~"));
    }

    #[test]
    fn filenames_are_sanitised() {
        let cases = [
            ("IMG_0001.HEIC", "IMG_0001.HEIC"),
            ("photo 1.jpg", "photo_1.jpg"),
            ("../../etc/passwd", "_._.__etc_passwd"),
            ("..", "_."),
            (".hidden", "_hidden"),
            ("a..b", "a._b"),
            ("ünïcödé.png", "_n_c_d_.png"),
            ("a/b\\c", "a_b_c"),
            ("tab\there\r\nx", "tab_here__x"),
            ("e\u{301}.txt", "e_.txt"),
            ("%2e%2e", "_2e_2e"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitise_filename(input), want, "{input:?}");
        }
    }

    #[test]
    fn keys_have_the_documented_shape() {
        let id = Uuid::parse_str("0b5f0000-0000-4000-8000-000000000001").unwrap();
        assert_eq!(
            object_key("photos", "alice", id, "IMG 1.HEIC"),
            "photos/alice/0b5f0000-0000-4000-8000-000000000001/IMG_1.HEIC"
        );
        let key = object_key("uploads/nested", "../x", id, "../../etc/passwd");
        assert!(key.starts_with("uploads/nested/~2E~2E~2Fx/"));
        assert!(!key.contains(".."), "{key}");
        assert!(!key.split('/').any(|s| s == "." || s.is_empty()));
    }

    #[test]
    fn long_keys_are_shortened_to_1024_bytes_keeping_the_extension() {
        let id = Uuid::new_v4();
        let owner = "o".repeat(255);
        let name = format!("{}.jpeg", "n".repeat(250));
        // 255 bytes of name fit: no shortening below the limit.
        let short = object_key("uploads", "alice", id, &name);
        assert!(short.ends_with(&name));
        // An owner of 255 multi-byte characters encodes to 9 bytes each: the name must give way.
        let wide_owner = "é".repeat(127);
        let key = object_key("a/b/c", &wide_owner, id, &name);
        assert_eq!(key.len(), MAX_KEY_LEN, "{}", key.len());
        assert!(key.ends_with(".jpeg"));
        let key = object_key("uploads", &owner, id, &"x".repeat(255));
        assert!(key.len() <= MAX_KEY_LEN);
        let no_ext = shorten(&"y".repeat(300), 100);
        assert_eq!(no_ext.len(), 100);
        assert_eq!(shorten("abcdef.verylongextension", 10), "abcdef.ver");
        assert_eq!(shorten("abc.d", 4), "ab.d");
        // Found by the property test below: a cut right after a `.` must not make `..`.
        assert_eq!(shorten("ab.c_d.e", 5), "ab.e");
    }

    proptest::proptest! {
        /// Any owner and filename, however hostile: the key keeps its four-part shape,
        /// never holds `..`, an empty or `.` segment, or a control, and fits in 1,024 bytes.
        #[test]
        fn any_input_gives_a_key_of_the_documented_shape(
            owner in "\\PC{1,255}",
            filename in proptest::string::string_regex("(?s).{1,255}").unwrap(),
            prefix in "[a-z0-9_-]{1,10}(/[a-z0-9_-]{1,10}){0,3}",
        ) {
            // Owners are at most 255 bytes (owner::is_valid).
            let mut owner = owner;
            while owner.len() > 255 {
                owner.pop();
            }
            let id = Uuid::new_v4();
            let key = object_key(&prefix, &owner, id, &filename);
            proptest::prop_assert!(key.len() <= MAX_KEY_LEN);
            proptest::prop_assert!(!key.contains(".."));
            proptest::prop_assert!(key.bytes().all(|b| b.is_ascii_graphic()), "{}", key);
            let head = format!("{prefix}/{}/{id}/", owner_segment(&owner));
            proptest::prop_assert!(key.starts_with(&head));
            let name = &key[head.len()..];
            proptest::prop_assert!(!name.is_empty() && !name.contains('/') && !name.starts_with('.'));
            proptest::prop_assert!(!key.split('/').any(|s| s.is_empty() || s == "."));
        }

        #[test]
        fn the_owner_segment_round_trips(owner in "\\PC{1,100}") {
            let seg = owner_segment(&owner);
            proptest::prop_assert!(!seg.contains('/') && !seg.contains('.'));
            proptest::prop_assert_eq!(decode_owner(&seg), owner);
        }
    }
}

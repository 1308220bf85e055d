//! Profiles: content-type matching, TOML validation and the part-plan table.
use super::*;

fn ct(s: &str) -> ContentType {
    ContentType::parse(s).unwrap()
}

#[test]
fn content_types_match_case_insensitively_ignoring_parameters() {
    let p = Profiles::from_toml("[profiles.photos]\nallowed_content_types = [\"image/JPEG\", \"text/*\"]\n").unwrap();
    let photos = p.get("photos").unwrap();
    assert!(photos.allows(&ct("image/jpeg")));
    assert!(photos.allows(&ct("Image/Jpeg; foo=bar")));
    assert!(photos.allows(&ct("text/plain; charset=utf-8")));
    assert!(!photos.allows(&ct("image/png")));
    assert!(!photos.allows(&ct("application/jpeg")));
    assert!(p.get("default").unwrap().allows(&ct("application/x-anything")));
    assert_eq!(ct("Text/Plain; charset=UTF-8").as_str(), "Text/Plain; charset=UTF-8");
}

#[test]
fn malformed_content_types_are_refused() {
    for bad in ["", "image", "image/", "/png", "*/*", "image/*", "a b/c", "image/png\r\nx: y", " image/png", "é/x"] {
        assert!(ContentType::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn active_types_are_recognised() {
    for a in [
        "text/html",
        "TEXT/HTML; charset=utf-8",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "application/atom+xml",
        "text/javascript",
        "application/ecmascript",
        "application/xhtml+xml",
    ] {
        assert!(ct(a).is_active(), "{a}");
    }
    for p in ["text/plain", "image/png", "application/json", "application/xmlfoo"] {
        assert!(!ct(p).is_active(), "{p}");
    }
}

#[test]
fn public_profiles_must_not_allow_active_types() {
    let bad = Profiles::from_toml("[profiles.pub]\nvisibility = \"public\"\n").unwrap();
    assert!(bad.check_public_profiles().is_err());
    let bad =
        Profiles::from_toml("[profiles.pub]\nvisibility = \"public\"\nallowed_content_types = [\"image/svg+xml\"]\n")
            .unwrap();
    assert!(bad.check_public_profiles().is_err());
    let ok = Profiles::from_toml("[profiles.pub]\nvisibility = \"public\"\nallowed_content_types = [\"image/png\"]\n")
        .unwrap();
    assert!(ok.check_public_profiles().is_ok());
}

#[test]
fn profile_files_are_validated() {
    for bad in [
        "[profiles.x]\nmax_sise = 1\n",
        "[profiles.x]\nupload_url_ttl = 604801\n",
        "[profiles.x]\nupload_url_ttl = 0\n",
        "[profiles.x]\npart_size = 1024\n",
        "[profiles.x]\nkey_prefix = \"a/../b\"\n",
        "[profiles.x]\nvisibility = \"world\"\n",
        "[profiles.x]\nallowed_content_types = [\"image\"]\n",
        "[profiles.\"a b\"]\n",
        "[other]\n",
    ] {
        assert!(Profiles::from_toml(bad).is_err(), "{bad}");
    }
    let p = Profiles::from_toml("[profiles.default]\nmax_size = 10\n").unwrap();
    assert_eq!(p.get("default").unwrap().max_size, 10, "default can be overridden");
    let d = Profiles::builtin();
    let d = d.get("default").unwrap();
    assert_eq!((d.max_size, d.multipart_threshold, d.part_size), (5 << 30, 100 << 20, 16 << 20));
    assert_eq!((d.upload_url_ttl, d.complete_grace, d.download_url_ttl), (3600, 900, 600));
    assert_eq!(d.key_prefix, "uploads");
}

#[test]
fn part_plan_table() {
    let p16 = 16 * MIB;
    type Case = (u64, u64, Option<(u64, u64)>);
    let cases: Vec<Case> = vec![
        (0, p16, None),
        (1, p16, Some((p16, 1))),
        (5 * MIB, 5 * MIB, Some((5 * MIB, 1))),
        (5 * MIB + 1, 5 * MIB, Some((5 * MIB, 2))),
        (3 * p16, p16, Some((p16, 3))),
        (3 * p16 + 1, p16, Some((p16, 4))),
        // exactly 10,000 parts at the preferred size
        (10_000 * p16, p16, Some((p16, 10_000))),
        // one byte more: the part size rises to a whole MiB
        (10_000 * p16 + 1, p16, Some((17 * MIB, 9_412))),
        // 5 TiB: 524.288 MiB -> 525 MiB parts
        (MAX_OBJECT_SIZE, p16, Some((525 * MIB, 9_987))),
        (MAX_OBJECT_SIZE + 1, p16, None),
    ];
    for (size, preferred, want) in cases {
        let got = PartPlan::new(size, preferred).ok().map(|p| (p.part_size, p.part_count));
        assert_eq!(got, want, "size {size}");
        if let Some((ps, pc)) = got {
            assert!(pc <= MAX_PARTS && (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&ps));
            let plan = PartPlan { part_size: ps, part_count: pc };
            let total: u64 = (1..=pc).map(|n| plan.part_len(size, n).unwrap()).sum();
            assert_eq!(total, size);
            assert!(plan.part_len(size, pc).unwrap() >= 1);
            assert_eq!(plan.part_len(size, pc + 1), None);
            assert_eq!(plan.part_len(size, 0), None);
        }
    }
}

#[test]
fn methods_and_visibilities_are_stored_as_the_api_names_them() {
    for m in [UploadMethod::Put, UploadMethod::Post, UploadMethod::Multipart] {
        assert_eq!(UploadMethod::parse(m.as_str()), Some(m));
        assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
    }
    for v in [Visibility::Private, Visibility::Public] {
        assert_eq!(Visibility::parse(v.as_str()), Some(v));
        assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
    }
    assert_eq!((UploadMethod::parse("PUT"), Visibility::parse("world")), (None, None));
}

#[test]
fn the_compose_setups_profiles_are_valid() {
    let p = Profiles::from_toml(include_str!("../../docker/profiles.toml")).unwrap();
    let photos = p.get("photos").unwrap();
    assert!(photos.processing.sniff, "its type rule turns sniffing on");
    assert_eq!(photos.processing.scan, [ScannerKind::Clamd]);
    assert_eq!(photos.processing.variants.iter().map(|v| v.size).collect::<Vec<_>>(), [256, 1024]);
    assert_eq!(p.get("voice").unwrap().retention, Some(2_592_000));
}

#[test]
fn processing_options_are_validated() {
    for (toml, needle) in [
        ("[profiles.p]\nvariants = { Thumb = 64 }", "a-z 0-9"),
        ("[profiles.p]\nvariants = { thumb = 8 }", "16 to 4096"),
        ("[profiles.p]\nscan = [\"clamd\", \"clamd\"]", "twice"),
        ("[profiles.p]\nscan = [\"virustotal\"]", "unknown variant"),
        ("[profiles.p]\nwebhook_url = \"ftp://x\"", "webhook_url"),
        ("[profiles.p]\nretention = 0", "retention"),
    ] {
        let err = Profiles::from_toml(toml).unwrap_err();
        assert!(err.contains(needle), "{toml}: {err}");
    }
    let any = Profiles::from_toml("[profiles.p]\nsniff = true").unwrap();
    assert!(any.get("p").unwrap().processing.sniff);
    assert!(!any.get("default").unwrap().processing.sniff, "*/* does not sniff unless asked");
}

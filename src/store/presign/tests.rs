//! The presigner against aws-sdk-s3's own presigned requests: byte-identical URLs.
use super::*;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::presigning::PresigningConfig;

mod manual;

const AK: &str = "AKIDTEST";
const SK: &str = "SECRETTEST123";
const R2: &str = "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com";
const LOCAL: &str = "http://127.0.0.1:8014";
const ENDPOINTS: [&str; 2] = [R2, LOCAL];
const BUCKET: &str = "tb";
const UPLOAD_ID: &str = "0b5f3c1e-7d2a-4c1b-9f3e-2a4b6c8d0e1f";
const SHA: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
const DISPOSITION: &str = r#"attachment; filename="a b.txt"; filename*=UTF-8''%C3%A9.txt"#;
const KEYS: [&str; 6] = [
    "uploads/b3duZXI/0b5f3c1e-7d2a-4c1b-9f3e-2a4b6c8d0e1f/IMG_0001.HEIC",
    "a_b-c.d/x~41y",
    "dir with spaces/a b.txt",
    "p/!\"#$&'()*+,:;<=>?@[\\]^`{|}~ x%y",
    "ünï/日本語 ファイル.txt",
    "a//b/.../c.",
];

/// 2026-11-22T19:15:00Z, and a second just before a UTC midnight.
fn times() -> [SystemTime; 3] {
    [
        UNIX_EPOCH + Duration::from_secs(1_795_374_900),
        UNIX_EPOCH + Duration::from_secs(1_795_391_999),
        UNIX_EPOCH + Duration::from_secs(1_795_392_000),
    ]
}

fn client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("auto"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn cfg(t: SystemTime, d: Duration) -> PresigningConfig {
    PresigningConfig::builder().start_time(t).expires_in(d).build().unwrap()
}

fn presigner(endpoint: &str) -> Presigner {
    Presigner::new(endpoint, BUCKET, "auto", AK, SK).unwrap()
}

#[track_caller]
fn assert_same(sdk: &aws_sdk_s3::presigning::PresignedRequest, mine: &PresignedRequest) {
    assert_eq!(sdk.method(), mine.method);
    assert_eq!(sdk.uri(), mine.url, "URL differs from the SDK's");
    let mut sdk_headers: Vec<(String, String)> = sdk
        .headers()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    sdk_headers.sort();
    assert_eq!(sdk_headers, mine.headers, "headers differ from the SDK's");
    let url = mine.url.to_ascii_lowercase();
    assert!(!url.contains("x-amz-checksum-crc32"), "{url}");
    assert!(!url.contains("x-amz-sdk-checksum-algorithm"), "{url}");
}

#[tokio::test]
async fn put_object_matches_sdk() {
    let mut checked = 0;
    for ep in ENDPOINTS {
        let (c, p) = (client(ep), presigner(ep));
        for key in KEYS {
            for t in times() {
                for d in [1, 3600, 604_800].map(Duration::from_secs) {
                    for ct in ["image/heic", "text/plain; charset=utf-8", "  a/b  ;  x=1 "] {
                        for sum in [None, Some(SHA)] {
                            let len = 3_481_923;
                            let sdk = c
                                .put_object()
                                .bucket(BUCKET)
                                .key(key)
                                .content_type(ct)
                                .content_length(len as i64)
                                .metadata("upload-id", UPLOAD_ID)
                                .if_none_match("*")
                                .set_checksum_sha256(sum.map(str::to_owned))
                                .presigned(cfg(t, d))
                                .await
                                .unwrap();
                            let mine = p.put_object(key, ct, Some(len), UPLOAD_ID, sum, d, t).unwrap();
                            assert_same(&sdk, &mine);
                            let signed = if sum.is_some() {
                                "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match%3Bx-amz-checksum-sha256%3Bx-amz-meta-upload-id&"
                            } else {
                                "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match%3Bx-amz-meta-upload-id&"
                            };
                            assert!(mine.url.contains(signed), "{}", mine.url);
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * KEYS.len() * 3 * 3 * 3 * 2);
}

/// Without a declared size (an Uppy upload with no `metadata[size]`): the same URL as the
/// SDK's PutObject without `content_length`, which signs no `content-length`.
#[tokio::test]
async fn put_object_without_a_length_matches_sdk() {
    for ep in ENDPOINTS {
        let (c, p) = (client(ep), presigner(ep));
        for key in KEYS {
            for t in times() {
                let d = Duration::from_secs(3600);
                let sdk = c
                    .put_object()
                    .bucket(BUCKET)
                    .key(key)
                    .content_type("image/png")
                    .metadata("upload-id", UPLOAD_ID)
                    .if_none_match("*")
                    .presigned(cfg(t, d))
                    .await
                    .unwrap();
                let mine = p.put_object(key, "image/png", None, UPLOAD_ID, None, d, t).unwrap();
                assert_same(&sdk, &mine);
                assert!(
                    mine.url
                        .contains("X-Amz-SignedHeaders=content-type%3Bhost%3Bif-none-match%3Bx-amz-meta-upload-id&")
                );
                assert!(mine.headers.iter().all(|(n, _)| n != "content-length"), "{:?}", mine.headers);
            }
        }
    }
}

#[tokio::test]
async fn upload_part_matches_sdk() {
    for ep in ENDPOINTS {
        let (c, p) = (client(ep), presigner(ep));
        for key in KEYS {
            for upload_id in ["VXBsb2FkIElE/Zm9v+YmFy==", "2~iCw_lDY8VoNCqCFmaeqa8B-vFWhr5cT", "a b/c+d=e&f%g"] {
                for (part, len) in [(1u32, 8_388_608u64), (10_000, 1), (7, 0)] {
                    for t in times() {
                        let d = Duration::from_secs(3600);
                        let sdk = c
                            .upload_part()
                            .bucket(BUCKET)
                            .key(key)
                            .upload_id(upload_id)
                            .part_number(part as i32)
                            .content_length(len as i64)
                            .presigned(cfg(t, d))
                            .await
                            .unwrap();
                        let mine = p.upload_part(key, upload_id, part, len, d, t).unwrap();
                        assert_same(&sdk, &mine);
                        assert!(mine.url.contains("X-Amz-SignedHeaders=content-length%3Bhost&"));
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn get_object_matches_sdk() {
    let every_ascii: String = (0x20u8..0x7f).map(char::from).collect();
    let unicode = "attachment; filename*=UTF-8''日本%E6.txt; x=\"é ü\"";
    let types = [None, Some("image/heic"), Some("text/plain; charset=\"utf-8\"")];
    let dispositions = [None, Some(DISPOSITION), Some("inline"), Some(every_ascii.as_str()), Some(unicode)];
    for ep in ENDPOINTS {
        let (c, p) = (client(ep), presigner(ep));
        for key in KEYS {
            for ty in types {
                for disp in dispositions {
                    for t in times() {
                        let d = Duration::from_secs(600);
                        let sdk = c
                            .get_object()
                            .bucket(BUCKET)
                            .key(key)
                            .set_response_content_type(ty.map(str::to_owned))
                            .set_response_content_disposition(disp.map(str::to_owned))
                            .presigned(cfg(t, d))
                            .await
                            .unwrap();
                        let mine = p.get_object(key, ty, disp, d, t).unwrap();
                        assert_same(&sdk, &mine);
                        assert!(mine.headers.is_empty());
                        assert!(mine.url.contains("X-Amz-SignedHeaders=host&"));
                    }
                }
            }
        }
    }
    // The awkward value also works as a content type.
    let t = times()[0];
    let d = Duration::from_secs(1);
    let c = client(R2);
    let sdk = c
        .get_object()
        .bucket(BUCKET)
        .key(KEYS[3])
        .response_content_type(&every_ascii)
        .response_content_disposition(unicode)
        .presigned(cfg(t, d))
        .await
        .unwrap();
    let mine = presigner(R2).get_object(KEYS[3], Some(&every_ascii), Some(unicode), d, t).unwrap();
    assert_same(&sdk, &mine);
}

#[tokio::test]
async fn head_and_delete_match_sdk() {
    for ep in ENDPOINTS {
        let (c, p) = (client(ep), presigner(ep));
        for key in KEYS {
            let (t, d) = (times()[1], Duration::from_secs(900));
            let sdk = c.head_object().bucket(BUCKET).key(key).presigned(cfg(t, d)).await.unwrap();
            assert_same(&sdk, &p.head_object(key, d, t).unwrap());
            let sdk = c.delete_object().bucket(BUCKET).key(key).presigned(cfg(t, d)).await.unwrap();
            assert_same(&sdk, &p.delete_object(key, d, t).unwrap());
        }
    }
}

#[tokio::test]
async fn endpoint_forms_match_sdk() {
    // Trailing slash, default ports (signed host without the port, URL keeps it),
    // another region and awkward credentials.
    let (t, d) = (times()[0], Duration::from_secs(60));
    for ep in [
        "https://acct.r2.cloudflarestorage.com/",
        "https://s3.eu-west-1.amazonaws.com:443",
        "http://localhost:80",
        "http://[::1]:9000",
    ] {
        for (region, ak, sk) in [("auto", AK, SK), ("eu-west-1", "AK+ID=x", "s/e+c=r")] {
            let conf = aws_sdk_s3::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(region))
                .endpoint_url(ep)
                .force_path_style(true)
                .credentials_provider(Credentials::new(ak, sk, None, None, "test"))
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .build();
            let c = aws_sdk_s3::Client::from_conf(conf);
            let p = Presigner::new(ep, "my-bucket.v2", region, ak, sk).unwrap();
            let sdk = c.get_object().bucket("my-bucket.v2").key(KEYS[0]).presigned(cfg(t, d)).await.unwrap();
            assert_same(&sdk, &p.get_object(KEYS[0], None, None, d, t).unwrap());
        }
    }
}

#[test]
fn signing_key_cache_follows_the_day() {
    let p = presigner(LOCAL);
    let [a, b, c] = times();
    let d = Duration::from_secs(60);
    let first: Vec<_> = [a, b, c, a, c]
        .iter()
        .map(|&t| p.put_object(KEYS[0], "image/png", Some(1), UPLOAD_ID, None, d, t).unwrap())
        .collect();
    for (i, &t) in [a, b, c, a, c].iter().enumerate() {
        let fresh = presigner(LOCAL);
        assert_eq!(fresh.put_object(KEYS[0], "image/png", Some(1), UPLOAD_ID, None, d, t).unwrap(), first[i]);
    }
    // The cached key is aws-sigv4's key for the day.
    let stamp = Stamp::new(c).unwrap();
    let expected = generate_signing_key(SK, c, "auto", "s3");
    assert_eq!(p.signing_key(&stamp).as_slice(), expected.as_ref());
}

#[test]
fn stamps_in_sigv4_form() {
    for (secs, date_time) in [
        (0, "19700101T000000Z"),
        (951_782_400, "20000229T000000Z"),
        (1_795_374_900, "20261122T191500Z"),
        (1_795_391_999, "20261122T235959Z"),
        (1_795_392_000, "20261123T000000Z"),
        (253_402_300_799, "99991231T235959Z"),
    ] {
        let s = Stamp::new(UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
        assert_eq!((s.date_time(), s.date()), (date_time, &date_time[..8]), "{secs}");
    }
    assert_eq!(Stamp::new(UNIX_EPOCH + Duration::from_secs(253_402_300_800)).err(), Some(PresignError::InvalidTime));
    assert_eq!(Stamp::new(UNIX_EPOCH - Duration::from_secs(1)).err(), Some(PresignError::InvalidTime));
}

#[test]
fn rejects_bad_input() {
    let p = presigner(R2);
    let t = times()[0];
    let h = Duration::from_secs(3600);
    let put = |key: &str, ct: &str, id: &str, sum: Option<&str>, d: Duration| {
        p.put_object(key, ct, Some(1), id, sum, d, t).err()
    };
    use PresignError::*;
    assert_eq!(put("k", "a/b", "id", None, Duration::ZERO), Some(InvalidExpiry));
    assert_eq!(put("k", "a/b", "id", None, Duration::from_millis(999)), Some(InvalidExpiry));
    assert_eq!(put("k", "a/b", "id", None, MAX_EXPIRES_IN + Duration::from_millis(1)), Some(InvalidExpiry));
    assert_eq!(put("k", "a/b", "id", None, Duration::from_secs(1)), None);
    assert_eq!(put("k", "a/b", "id", None, MAX_EXPIRES_IN), None);
    assert!(matches!(put("", "a/b", "id", None, h), Some(InvalidKey(_))));
    assert!(matches!(put("/k", "a/b", "id", None, h), Some(InvalidKey(_))));
    assert!(matches!(put("a/../k", "a/b", "id", None, h), Some(InvalidKey(_))));
    assert!(matches!(put("a/./k", "a/b", "id", None, h), Some(InvalidKey(_))));
    assert!(matches!(put("..", "a/b", "id", None, h), Some(InvalidKey(_))));
    assert!(matches!(put(&"k".repeat(1025), "a/b", "id", None, h), Some(InvalidKey(_))));
    assert_eq!(put(&"k".repeat(1024), "a/b", "id", None, h), None);
    assert_eq!(put("k", "", "id", None, h), Some(InvalidHeaderValue("content-type")));
    assert_eq!(put("k", "   ", "id", None, h), Some(InvalidHeaderValue("content-type")));
    assert_eq!(put("k", "a/b\r\nx: y", "id", None, h), Some(InvalidHeaderValue("content-type")));
    assert_eq!(put("k", "a/b\tc", "id", None, h), Some(InvalidHeaderValue("content-type")));
    assert_eq!(put("k", "a/é", "id", None, h), Some(InvalidHeaderValue("content-type")));
    assert_eq!(put("k", "a/b", "", None, h), Some(InvalidHeaderValue("x-amz-meta-upload-id")));
    assert_eq!(put("k", "a/b", "id", Some(""), h), Some(InvalidHeaderValue("x-amz-checksum-sha256")));
    assert_eq!(p.upload_part("k", "u", 0, 1, h, t).err(), Some(InvalidPartNumber));
    assert_eq!(p.upload_part("k", "u", 10_001, 1, h, t).err(), Some(InvalidPartNumber));
    assert_eq!(p.upload_part("k", "", 1, 1, h, t).err(), Some(InvalidUploadId));
    assert_eq!(p.get_object("k", None, None, Duration::ZERO, t).err(), Some(InvalidExpiry));

    for ep in [
        "ftp://x",
        "x.example.com",
        "https://",
        "https://u:p@x.example.com",
        "https://x.example.com/path",
        "https://x.example.com/?q=1",
        "",
    ] {
        assert!(matches!(Presigner::new(ep, "b", "auto", AK, SK), Err(InvalidEndpoint(_))), "{ep}");
    }
    for b in ["", "a/b", "a b", ".", "..", "é"] {
        assert!(matches!(Presigner::new(R2, b, "auto", AK, SK), Err(InvalidBucket(_))), "{b}");
    }
    assert!(matches!(Presigner::new(R2, "b", "", AK, SK), Err(InvalidRegion(_))));
    assert!(matches!(Presigner::new(R2, "b", "a/b", AK, SK), Err(InvalidRegion(_))));
    assert!(matches!(Presigner::new(R2, "b", "auto", "", SK), Err(InvalidCredentials(_))));
    assert!(matches!(Presigner::new(R2, "b", "auto", AK, ""), Err(InvalidCredentials(_))));
    // The secret never shows in Debug output.
    assert!(!format!("{p:?}").contains(SK));
}

#[test]
fn endpoint_normalisation() {
    let p = Presigner::new("HTTPS://ACCT.R2.example.COM/", "b", "auto", AK, SK).unwrap();
    assert_eq!(p.endpoint(), "https://acct.r2.example.com");
    assert_eq!(p.signed_host(), "acct.r2.example.com");
    assert_eq!(p.bucket_url(), "https://acct.r2.example.com/b");
    let p = Presigner::new("https://x.example.com:443", "b", "auto", AK, SK).unwrap();
    assert_eq!(p.endpoint(), "https://x.example.com:443");
    assert_eq!(p.signed_host(), "x.example.com");
    let p = Presigner::new(LOCAL, "b", "auto", AK, SK).unwrap();
    assert_eq!(p.signed_host(), "127.0.0.1:8014");
}

//! Checks run by hand (`--ignored`): the presigner's speed, and its URLs against a live
//! s3s-fs driven with curl. The integration tests (`tests/it`) exercise the same URLs
//! against s3s-fs on every run; these are for trying another store or measuring.

use super::*;

/// `cargo test --release -- --ignored --nocapture bench_presign`
#[test]
#[ignore]
fn bench_presign() {
    const N: u32 = 100_000;
    let p = presigner(R2);
    let t = times()[0];
    let d = Duration::from_secs(3600);
    let key = KEYS[0];
    let _ = p.put_object(key, "image/heic", Some(3_481_923), UPLOAD_ID, Some(SHA), d, t);
    let start = std::time::Instant::now();
    for i in 0..N {
        let r = p.put_object(key, "image/heic", Some(3_481_923 + u64::from(i)), UPLOAD_ID, Some(SHA), d, t).unwrap();
        std::hint::black_box(r);
    }
    let put = start.elapsed().as_nanos() / u128::from(N);
    let start = std::time::Instant::now();
    for i in 0..N {
        let r = p.upload_part(key, "VXBsb2FkIElE/Zm9v+YmFy==", 1 + i % 10_000, 8_388_608, d, t).unwrap();
        std::hint::black_box(r);
    }
    let part = start.elapsed().as_nanos() / u128::from(N);
    let start = std::time::Instant::now();
    for _ in 0..N {
        let r = p.get_object(key, Some("image/heic"), Some(DISPOSITION), d, t).unwrap();
        std::hint::black_box(r);
    }
    let get = start.elapsed().as_nanos() / u128::from(N);
    // The crypto alone: one HMAC-SHA256 over a string to sign with the cached key.
    let stamp = Stamp::new(t).unwrap();
    let sts = [b'x'; 140];
    let start = std::time::Instant::now();
    for _ in 0..N {
        std::hint::black_box(p.sign(&stamp, std::hint::black_box(&sts)));
    }
    let hmac = start.elapsed().as_nanos() / u128::from(N);
    let start = std::time::Instant::now();
    for _ in 0..N / 10 {
        std::hint::black_box(generate_signing_key(SK, t, "auto", "s3").as_ref().len());
    }
    let keygen = start.elapsed().as_nanos() / u128::from(N / 10);
    // The SDK's presigner on the same PUT, for a ratio (fewer iterations: it is slower).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let c = client(R2);
    let sdk_n = N / 10;
    let start = std::time::Instant::now();
    rt.block_on(async {
        for i in 0..sdk_n {
            let r = c
                .put_object()
                .bucket(BUCKET)
                .key(key)
                .content_type("image/heic")
                .content_length(3_481_923 + i64::from(i))
                .metadata("upload-id", UPLOAD_ID)
                .if_none_match("*")
                .checksum_sha256(SHA)
                .presigned(cfg(t, d))
                .await
                .unwrap();
            std::hint::black_box(r);
        }
    });
    let sdk_put = start.elapsed().as_nanos() / u128::from(sdk_n);
    println!(
        "ns per presign over {N} iterations: put_object {put}, upload_part {part}, get_object {get}; \
         calculate_signature with cached key {hmac}; generate_signing_key {keygen}; \
         SDK presigned put_object {sdk_put} (over {sdk_n})"
    );
}

/// Live check against s3s-fs (signature-checking S3 server), driven with curl:
/// `s3s-fs --host 127.0.0.1 --port 18014 --access-key AKIDTEST --secret-key SECRETTEST123 /tmp/s3data`
/// with the bucket folder `/tmp/s3data/pst` created (s3s wants 3+ character bucket
/// names), then `cargo test -- --ignored --nocapture live_s3s_fs`
/// (`LIVE_S3_ENDPOINT` and `LIVE_S3_BUCKET` override the endpoint and bucket).
#[tokio::test]
#[ignore]
async fn live_s3s_fs() {
    use base64::Engine as _;
    let ep = std::env::var("LIVE_S3_ENDPOINT").unwrap_or("http://127.0.0.1:18014".into());
    let bucket = std::env::var("LIVE_S3_BUCKET").unwrap_or("pst".into());
    let p = Presigner::new(&ep, &bucket, "auto", AK, SK).unwrap();
    let now = SystemTime::now();
    let d = Duration::from_secs(300);
    let run = std::process::id();
    let key = format!("live/{run}/a b~(1).txt");
    let body = b"hello presigned world\n".to_vec();
    let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));

    // PUT with every signed header: 200; a second PUT of the key: 412.
    let put = p
        .put_object(&key, "text/plain; charset=utf-8", Some(body.len() as u64), UPLOAD_ID, Some(&sum), d, now)
        .unwrap();
    assert_eq!(curl::send(&put, &body).0, 200);
    assert_eq!(curl::send(&put, &body).0, 412);
    // Another size, type or body is refused by the store.
    let key2 = format!("live/{run}/b.txt");
    let put2 = p.put_object(&key2, "text/plain", Some(body.len() as u64), UPLOAD_ID, Some(&sum), d, now).unwrap();
    let mut wrong_type = put2.clone();
    wrong_type.headers[1].1 = "text/html".into();
    assert_eq!(curl::send(&wrong_type, &body).0, 403);
    let mut short = body.clone();
    short.pop();
    let mut wrong_len = put2.clone();
    wrong_len.headers[0].1 = short.len().to_string();
    assert_eq!(curl::send(&wrong_len, &short).0, 403);
    let mut wrong_body = body.clone();
    wrong_body[0] = b'j';
    assert_eq!(curl::send(&put2, &wrong_body).0, 400);
    // An expired URL is refused.
    let old = p.get_object(&key, None, None, Duration::from_secs(1), now - Duration::from_secs(10)).unwrap();
    assert_eq!(curl::send(&old, b"").0, 403);

    // GET with response overrides.
    let get = p.get_object(&key, Some("application/octet-stream"), Some(DISPOSITION), d, now).unwrap();
    let (status, headers, got) = curl::send(&get, b"");
    assert_eq!(status, 200, "{headers}");
    assert_eq!(got, body);
    let lower = headers.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/octet-stream"), "{headers}");
    assert!(headers.contains(DISPOSITION), "{headers}");
    let head = p.head_object(&key, d, now).unwrap();
    let (status, headers, _) = curl::send(&head, b"");
    assert_eq!(status, 200);
    assert!(headers.to_ascii_lowercase().contains("x-amz-meta-upload-id: 0b5f"), "{headers}");

    // Multipart: create and complete with the SDK, parts through presigned URLs.
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("auto"))
        .endpoint_url(&ep)
        .force_path_style(true)
        .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    let c = aws_sdk_s3::Client::from_conf(conf);
    let mkey = format!("live/{run}/multi part+.bin");
    let created = c.create_multipart_upload().bucket(&bucket).key(&mkey).send().await.unwrap();
    let upload_id = created.upload_id().unwrap().to_owned();
    let part1 = vec![b'a'; 5 * 1024 * 1024];
    let part2 = b"tail".to_vec();
    let mut parts = Vec::new();
    for (n, bytes) in [(1u32, &part1), (2, &part2)] {
        let req = p.upload_part(&mkey, &upload_id, n, bytes.len() as u64, d, now).unwrap();
        let (status, headers, _) = curl::send(&req, bytes);
        assert_eq!(status, 200, "{headers}");
        let etag = headers
            .lines()
            .find_map(|l| l.strip_prefix("etag: ").or_else(|| l.strip_prefix("ETag: ")))
            .unwrap()
            .trim()
            .to_owned();
        parts.push(aws_sdk_s3::types::CompletedPart::builder().part_number(n as i32).e_tag(etag).build());
    }
    // A part of another size than signed is refused.
    let mut req = p.upload_part(&mkey, &upload_id, 2, 5, d, now).unwrap();
    req.headers[0].1 = "4".into();
    assert_eq!(curl::send(&req, b"tail").0, 403);
    c.complete_multipart_upload()
        .bucket(&bucket)
        .key(&mkey)
        .upload_id(&upload_id)
        .multipart_upload(aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    let head = c.head_object().bucket(&bucket).key(&mkey).send().await.unwrap();
    assert_eq!(head.content_length(), Some((part1.len() + part2.len()) as i64));

    for k in [&key, &mkey] {
        let del = p.delete_object(k, d, now).unwrap();
        assert_eq!(curl::send(&del, b"").0, 204);
    }
    println!("live s3s-fs check passed against {ep}");
}

/// Minimal curl driver for the live test.
pub(crate) mod curl {
    use super::PresignedRequest;
    use std::process::Command;

    /// Sends `req` with `body` (for PUT); returns status, raw response headers, body.
    pub(crate) fn send(req: &PresignedRequest, body: &[u8]) -> (u16, String, Vec<u8>) {
        let dir =
            std::env::temp_dir().join(format!("presign-curl-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (bin, bout, hout) = (dir.join("in"), dir.join("out"), dir.join("headers"));
        std::fs::write(&bin, body).unwrap();
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-g", "-o"]).arg(&bout).arg("-D").arg(&hout).args(["-w", "%{http_code}", "-H", "Expect:"]);
        match req.method {
            "HEAD" => cmd.arg("-I"),
            m => cmd.args(["-X", m]),
        };
        for (n, v) in &req.headers {
            cmd.arg("-H").arg(format!("{n}: {v}"));
        }
        if req.method == "PUT" {
            cmd.arg("-T").arg(&bin);
        }
        cmd.arg(&req.url);
        let out = cmd.output().unwrap();
        let status = String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0);
        let headers = std::fs::read_to_string(&hout).unwrap_or_default();
        let got = std::fs::read(&bout).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        (status, headers, got)
    }
}

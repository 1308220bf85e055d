//! Multipart through `/v1/companion`, as Uppy 5 drives it.

use super::*;

#[tokio::test]
async fn multipart_goes_create_sign_list_complete_to_an_asset() {
    let app = app().await;
    let token = app.token("carol");
    let data = bytes(12 * MIB, 3);
    let size = data.len().to_string();

    // createMultipartUpload: `{filename, type, metadata}`
    let metadata = json!({"name": "v.mp4", "type": "video/mp4", "size": size, "album": "trip"});
    let created = create_multipart(&app, &token, "v.mp4", "video/mp4", metadata).await;
    assert_eq!(created.status, 200, "{:#}", created.body);
    let id = created.body["uploadId"].as_str().unwrap().to_owned();
    let key = created.body["key"].as_str().unwrap().to_owned();
    assert_eq!(app.usage_row("carol").await, (0, 0, data.len() as i64, 1));
    let plan: (Option<i64>, Option<i32>) = {
        let row = app
            .db
            .query_one("select part_size, part_count from uploads where id = $1::text::uuid", &[&id])
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(plan, (Some(5 * MIB as i64), Some(3)), "planned the way Uppy slices: 5 + 5 + 2 MiB");
    let k = uri_component(&key);

    // signPart + PUT for parts 1 and 2 (Uppy's slices: 5 MiB each), no headers of its own.
    let mut etags = Vec::new();
    for n in 1..=2usize {
        let signed = uppy(&app, Method::GET, &format!("s3/multipart/{id}/{n}?key={k}"), Some(&token), None).await;
        assert_eq!(signed.status, 200, "{:#}", signed.body);
        assert!(signed.body["expires"].as_u64().unwrap() > 0);
        let res = send_bytes(&app, &signed.body, data[(n - 1) * 5 * MIB..n * 5 * MIB].to_vec()).await;
        assert_eq!(res.status(), 200);
        etags.push(res.headers()["etag"].to_str().unwrap().to_owned());
    }

    // listParts (resume after a pause): what the store has.
    let listed = uppy(&app, Method::GET, &format!("s3/multipart/{id}?key={k}"), Some(&token), None).await;
    assert_eq!(listed.status, 200, "{:#}", listed.body);
    let listed: Vec<(u64, u64)> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["PartNumber"].as_u64().unwrap(), p["Size"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed, [(1, 5 * MIB as u64), (2, 5 * MIB as u64)]);

    let last = uppy(&app, Method::GET, &format!("s3/multipart/{id}/3?key={k}"), Some(&token), None).await;
    let res = send_bytes(&app, &last.body, data[10 * MIB..].to_vec()).await;
    assert_eq!(res.status(), 200);
    etags.push(res.headers()["etag"].to_str().unwrap().to_owned());

    // completeMultipartUpload: `{parts: [{ETag, PartNumber}]}`, ETags quoted as received.
    let parts: Vec<Value> = etags.iter().enumerate().map(|(i, e)| json!({"ETag": e, "PartNumber": i + 1})).collect();
    let complete = async || {
        let body = json!({"parts": parts});
        uppy(&app, Method::POST, &format!("s3/multipart/{id}/complete?key={k}"), Some(&token), Some(body)).await
    };
    let done = complete().await;
    assert_eq!(done.status, 200, "{:#}", done.body);
    let location = format!("{}/{}/{key}", crate::support::store().endpoint, app.bucket);
    assert_eq!(done.body["location"], location.as_str());
    assert_eq!(done.body["key"], key.as_str());
    assert_eq!(done.body["asset"]["size"], data.len());
    assert_eq!(done.body["asset"]["metadata"], json!({"album": "trip"}));
    assert_eq!(done.body["asset_id"], done.body["asset"]["id"]);
    assert_eq!(app.upload_status(&id).await, "completed");
    assert_eq!(app.usage_row("carol").await, (data.len() as i64, 1, 0, 0));
    assert_eq!(app.object(&key).await.unwrap(), data);

    // A retry after a lost answer: listParts names every part, complete gives the same asset.
    let listed = uppy(&app, Method::GET, &format!("s3/multipart/{id}?key={k}"), Some(&token), None).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(3), "{:#}", listed.body);
    let again = complete().await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(again.body["asset_id"], done.body["asset_id"]);
    assert_eq!(app.usage_row("carol").await, (data.len() as i64, 1, 0, 0));
}

#[tokio::test]
async fn multipart_without_a_size_is_a_400_that_names_the_uppy_line() {
    let app = app().await;
    let body = json!({"filename": "v.mp4", "type": "video/mp4", "metadata": {"name": "v.mp4", "type": "video/mp4"}});
    let c = uppy(&app, Method::POST, "s3/multipart", Some(&app.token("dan")), Some(body)).await;
    let message = assert_companion_error(&c, 400, "invalid_request");
    assert!(message.contains("uppy.setFileMeta(f.id, { size: f.size })"), "{message}");
    assert_eq!(app.usage_row("dan").await, (0, 0, 0, 0));
    assert_eq!(app.count("select count(*) from uploads").await, 0);
}

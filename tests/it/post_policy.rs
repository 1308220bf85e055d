//! POST policy (browser form uploads) against s3s-fs, which checks the policy's signature
//! and conditions: the declared file lands, anything else is refused by the store.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::multipart::bytes;
use crate::support::{TestApp, TestOptions, store};

const CT: &str = "text/plain; charset=utf-8";

async fn post_intent(app: &TestApp, owner: &str, size: usize) -> Value {
    let c = app.create(owner, json!({"filename": "n.txt", "content_type": CT, "size": size, "method": "post"})).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
    c.body
}

/// The intent's fields in order (`fields` is a JSON object; the order the form needs is
/// key first, Policy and signature last, which the store does not depend on).
fn fields(intent: &Value) -> Vec<(String, String)> {
    const ORDER: [&str; 8] = [
        "key",
        "Content-Type",
        "x-amz-meta-upload-id",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "Policy",
        "X-Amz-Signature",
    ];
    let obj = intent["fields"].as_object().expect("fields");
    let mut names: Vec<&String> = obj.keys().collect();
    names.sort_by_key(|n| ORDER.iter().position(|o| o == n).unwrap_or(usize::MAX));
    names.into_iter().map(|n| (n.clone(), obj[n].as_str().unwrap().to_owned())).collect()
}

/// POSTs a `multipart/form-data` form: the fields in order, then the file last.
async fn post_form(app: &TestApp, url: &str, fields: &[(String, String)], file: Vec<u8>) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (n, v) in fields {
        form = form.text(n.clone(), v.clone());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(file).file_name("n.txt"));
    app.http.post(url).multipart(form).send().await.expect("the store answers")
}

fn set(fields: &mut [(String, String)], name: &str, value: String) {
    fields.iter_mut().find(|(n, _)| n == name).unwrap().1 = value;
}

fn policy_doc(fields: &[(String, String)]) -> Value {
    let policy = &fields.iter().find(|(n, _)| n == "Policy").unwrap().1;
    serde_json::from_slice(&STANDARD.decode(policy).expect("base64 policy")).expect("JSON policy")
}

#[tokio::test]
async fn a_post_intent_carries_an_exact_policy_and_the_declared_file_lands() {
    let app = TestApp::spawn().await;
    let data = bytes(37, 9);
    let intent = post_intent(&app, "po", data.len()).await;
    let id = intent["upload_id"].as_str().unwrap();
    let key = intent["key"].as_str().unwrap();
    assert_eq!(intent["method"], "post");
    assert_eq!(intent["headers"], Value::Null);
    assert_eq!(intent["url"], format!("{}/{}", store().endpoint, app.bucket));

    let fields = fields(&intent);
    let get = |n: &str| fields.iter().find(|(f, _)| f == n).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("{n}"));
    assert_eq!(fields.len(), 8, "{fields:?}");
    assert_eq!(get("key"), key);
    assert_eq!(get("Content-Type"), CT);
    assert_eq!(get("x-amz-meta-upload-id"), id);
    assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
    let credential = get("X-Amz-Credential");
    assert!(credential.starts_with(&format!("{}/", store().access_key)), "{credential}");
    assert!(credential.ends_with("/auto/s3/aws4_request"), "{credential}");
    let date = get("X-Amz-Date");
    assert!(date.len() == 16 && date.ends_with('Z') && credential.contains(&date[..8]), "{date}");
    assert_eq!(get("X-Amz-Signature").len(), 64);

    let doc = policy_doc(&fields);
    assert!(doc["expiration"].as_str().unwrap().ends_with(".000Z"), "{doc}");
    assert_eq!(
        doc["conditions"],
        json!([
            {"bucket": app.bucket},
            ["eq", "$key", key],
            ["eq", "$Content-Type", CT],
            ["content-length-range", data.len(), data.len()],
            {"x-amz-meta-upload-id": id},
            {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
            {"x-amz-credential": credential},
            {"x-amz-date": date},
        ])
    );
    assert_eq!(app.usage_row("po").await, (0, 0, data.len() as i64, 1));

    let res = post_form(&app, intent["url"].as_str().unwrap(), &fields, data.clone()).await;
    assert!([200, 201, 204].contains(&res.status().as_u16()), "{}: {}", res.status(), res.text().await.unwrap());
    let done = app.complete("po", &intent["upload_id"]).await;
    assert_eq!(done.status, 201, "{:#}", done.body);
    assert_eq!(done.body["content_type"], CT);
    assert_eq!(app.object(key).await.unwrap(), data);
    assert_eq!(app.usage_row("po").await, (data.len() as i64, 1, 0, 0));
}

#[tokio::test]
async fn the_store_refuses_a_bigger_or_smaller_file_than_declared() {
    let app = TestApp::spawn().await;
    let intent = post_intent(&app, "pq", 20).await;
    let fields = fields(&intent);
    for n in [21, 19, 0] {
        let res = post_form(&app, intent["url"].as_str().unwrap(), &fields, bytes(n, 1)).await;
        assert!(res.status().is_client_error(), "{n} bytes: {}", res.status());
    }
    assert!(app.keys().await.is_empty(), "nothing landed");
    app.complete("pq", &intent["upload_id"]).await.assert_error(409, "object_missing");
}

#[tokio::test]
async fn the_store_refuses_a_tampered_policy_or_key() {
    let app = TestApp::spawn().await;
    let intent = post_intent(&app, "pr", 20).await;
    let url = intent["url"].as_str().unwrap();
    let original = fields(&intent);

    // A wider size range, re-encoded: the signature no longer matches.
    let mut doc = policy_doc(&original);
    doc["conditions"][3] = json!(["content-length-range", 0, 1000]);
    let mut tampered = original.clone();
    set(&mut tampered, "Policy", STANDARD.encode(serde_json::to_vec(&doc).unwrap()));
    let res = post_form(&app, url, &tampered, bytes(50, 2)).await;
    assert!(res.status().is_client_error(), "tampered policy, bigger file: {}", res.status());
    let res = post_form(&app, url, &tampered, bytes(20, 2)).await;
    assert!(res.status().is_client_error(), "tampered policy, declared size: {}", res.status());

    // Another key under the same signature: the policy pins the key.
    let mut other = original.clone();
    let other_key = format!("{}x", intent["key"].as_str().unwrap());
    set(&mut other, "key", other_key.clone());
    let res = post_form(&app, url, &other, bytes(20, 2)).await;
    assert!(res.status().is_client_error(), "tampered key: {}", res.status());

    // Another content type is refused too.
    let mut typed = original.clone();
    set(&mut typed, "Content-Type", "text/html".into());
    let res = post_form(&app, url, &typed, bytes(20, 2)).await;
    assert!(res.status().is_client_error(), "tampered type: {}", res.status());

    assert!(app.keys().await.is_empty(), "nothing landed: {:?}", app.keys().await);
    // The untouched form still works.
    let res = post_form(&app, url, &original, bytes(20, 2)).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(app.keys().await, [intent["key"].as_str().unwrap()]);
}

#[tokio::test]
async fn post_on_r2_is_method_not_supported_and_says_to_use_put() {
    let app = TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(|s| s.s3_provider = Some("r2".into()))),
        ..Default::default()
    })
    .await;
    let r = app.create("ps", json!({"filename": "n.txt", "content_type": CT, "size": 5, "method": "post"})).await;
    let message = r.assert_error(400, "method_not_supported");
    assert!(message.contains("put"), "{message}");
    assert_eq!(app.usage_row("ps").await, (0, 0, 0, 0));
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    // put still works there.
    let c = app.create("ps", json!({"filename": "n.txt", "content_type": CT, "size": 5})).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
}

//! Clients that send headers and then stall or trickle the body (issue 11): the broker
//! answers `408 request_timeout` within `BROKER_BODY_TIMEOUT`, closes the connection, writes
//! nothing, and keeps answering everyone else.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestApp, TestOptions};

async fn app() -> TestApp {
    TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(|s| s.body_timeout = Some("1".into()))),
        ..Default::default()
    })
    .await
}

/// Opens a connection and sends a create's headers with `Content-Length: 64` and the
/// first `sent` bytes of a body.
async fn start_request(app: &TestApp, sent: &[u8]) -> TcpStream {
    let mut conn = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 64\r\n\r\n",
        app.token("slow")
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(sent).await.unwrap();
    conn
}

/// Everything the server sends until it closes the connection (bounded, so a broker that
/// never answers fails the test instead of hanging it).
async fn read_until_closed(conn: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), conn.read_to_end(&mut out))
        .await
        .expect("the broker answers and closes within its body timeout")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_stalled_body_is_408_and_the_connection_is_closed() {
    let app = app().await;
    let mut conn = start_request(&app, br#"{"filename":"a.txt","#).await;
    let answer = read_until_closed(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
    // Others are still served.
    let c = app.create("slow", serde_json::json!({"filename": "a", "content_type": "text/plain", "size": 1})).await;
    assert_eq!(c.status, 201, "{:#}", c.body);
}

#[tokio::test]
async fn a_trickled_body_is_bounded_in_total_not_per_byte() {
    let app = app().await;
    let mut conn = start_request(&app, b"{").await;
    // One byte every 200 ms never lets an idle timer fire; the total bound still does.
    let trickle = async {
        for b in br#""filename":"a.txt","content_type":"text/plain","size":1, "#.iter().cycle().take(40) {
            if conn.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), trickle).await.expect("trickle loop is bounded");
    let answer = read_until_closed(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(app.count("select count(*) from uploads").await, 0);
}

#[tokio::test]
async fn headers_that_never_finish_are_dropped() {
    let app = app().await;
    let mut conn = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // actix's client_request_timeout (5 s) answers 408 or just closes.
    let answer = read_until_closed(&mut conn).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// Sends `GET /healthz` on a kept-alive connection and reads the (small) answer.
async fn healthz_on(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await.expect("an answer").unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Past `BROKER_MAX_CONNECTIONS` a connection is still accepted and answered `503` +
/// `Retry-After` and closed (a flood gets answers, not a stalled accept queue); once a
/// connection closes, new ones are served again.
#[tokio::test]
async fn a_connection_past_the_limit_is_answered_503_and_closed() {
    let app = TestApp::spawn_with(TestOptions {
        tweak: Some(Box::new(|s| s.max_connections = Some("2".into()))),
        ..Default::default()
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        assert!(healthz_on(&mut conn).await.starts_with("HTTP/1.1 200"));
        held.push(conn);
    }
    let mut third = TcpStream::connect(&addr).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1") && lower.contains("connection: close"), "{answer}");
    assert!(lower.contains("x-request-id: ") && answer.contains("\"code\":\"unavailable\""), "{answer}");
    assert!(answer.contains("\"request_id\":\""), "the body names the request: {answer}");

    drop(held.pop());
    // The slot is given back when the server sees the close; poll with a bound.
    let mut served = false;
    for _ in 0..50 {
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        if healthz_on(&mut conn).await.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "a new connection is served once one closed");
}

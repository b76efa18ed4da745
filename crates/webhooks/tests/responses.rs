//! How `Deliverer` reads answers, against a raw TCP server that writes canned responses.

use std::time::{Duration, Instant, SystemTime};

use plugboard_webhooks::{Deliverer, RESPONSE_EXCERPT_LIMIT, WebhookMessage, WebhookSecret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

/// Serves one connection: reads the request head, writes `head` and `body`, then keeps
/// the connection open for `linger` without writing more.
async fn serve_once(head: String, body: Vec<u8>, linger: Duration) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let _ = socket.read(&mut buf).await;
        socket.write_all(head.as_bytes()).await.unwrap();
        let _ = socket.write_all(&body).await;
        tokio::time::sleep(linger).await;
    });
    url
}

fn message() -> WebhookMessage {
    WebhookMessage::new("msg_1", 1_700_000_000, &b"{}"[..])
}

async fn deliver(url: &Url, timeout: Duration) -> plugboard_webhooks::AttemptOutcome {
    let secret = WebhookSecret::generate();
    Deliverer::new(true)
        .unwrap()
        .deliver(url, &message(), &[&secret], timeout)
        .await
}

#[tokio::test]
async fn keeps_only_the_first_kibibyte_of_the_body() {
    let body = "é".repeat(3000).into_bytes();
    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
    let url = serve_once(head, body, Duration::ZERO).await;

    let outcome = deliver(&url, Duration::from_secs(5)).await;

    assert!(outcome.delivered(), "{outcome:?}");
    assert_eq!(outcome.error, None);
    assert_eq!(
        outcome.response_excerpt,
        "é".repeat(RESPONSE_EXCERPT_LIMIT / 2)
    );
}

#[tokio::test]
async fn a_stalled_body_ends_at_the_timeout_keeping_status_and_what_arrived() {
    let head = "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".to_owned();
    let url = serve_once(head, b"partial".to_vec(), Duration::from_secs(10)).await;

    let started = Instant::now();
    let outcome = deliver(&url, Duration::from_millis(800)).await;

    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.response_excerpt, "partial");
    assert!(
        outcome.error.as_deref().unwrap().contains("timeout"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn retry_after_as_a_date_on_503() {
    let at = SystemTime::now() + Duration::from_secs(120);
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: {}\r\ncontent-length: 4\r\n\r\n",
        httpdate::fmt_http_date(at)
    );
    let url = serve_once(head, b"busy".to_vec(), Duration::ZERO).await;

    let outcome = deliver(&url, Duration::from_secs(5)).await;

    assert_eq!(outcome.status, Some(503));
    assert_eq!(outcome.response_excerpt, "busy");
    let wait = outcome.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(115) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );
}

#[tokio::test]
async fn retry_after_is_ignored_on_other_statuses() {
    let head = "HTTP/1.1 500 Internal Server Error\r\nretry-after: 30\r\ncontent-length: 0\r\n\r\n";
    let url = serve_once(head.to_owned(), Vec::new(), Duration::ZERO).await;

    let outcome = deliver(&url, Duration::from_secs(5)).await;

    assert_eq!(outcome.status, Some(500));
    assert_eq!(outcome.retry_after, None);
    assert_eq!(outcome.error, None);
}

/// A host *name* that resolves to loopback passes the URL check (names are not resolved
/// there) but is refused when the connection is made, unless loopback is allowed.
#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_refused_at_connection_time() {
    let head = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n".to_owned();
    let served = serve_once(head, b"ok".to_vec(), Duration::ZERO).await;
    let by_name = Url::parse(&format!("http://localhost:{}/hook", served.port().unwrap())).unwrap();
    let secret = WebhookSecret::generate();
    let refused = Deliverer::new(false)
        .unwrap()
        .deliver(&by_name, &message(), &[&secret], Duration::from_secs(5))
        .await;
    assert_eq!(refused.status, None, "{refused:?}");
    let error = refused.error.unwrap();
    assert!(
        error.contains("not allowed") || error.contains("localhost"),
        "{error}"
    );

    let allowed = deliver(&by_name, Duration::from_secs(5)).await;
    assert!(allowed.delivered(), "{allowed:?}");
}

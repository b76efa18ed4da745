//! Each injected fault fires exactly the number of times asked, then stops.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::*;

// Long enough that an undelayed loopback request stays well under it on a loaded machine.
const DELAY: Duration = Duration::from_millis(1500);

async fn api(h: &Harness, token: &str) -> Response {
    let request = h.http.get(h.url("/api/me")).bearer_auth(token);
    request.send().await.unwrap()
}

async fn access_token(h: &Harness) -> String {
    let body: Value = h.client_credentials().await.json().await.unwrap();
    str_of(&body, "access_token").to_owned()
}

#[tokio::test]
async fn token_status_fault() {
    let h = start(config()).await;
    h.sandbox.faults().fail_token_with_status(500, 2);
    for _ in 0..2 {
        let response = h.client_credentials().await;
        let error = oauth_error(response, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert_eq!(error, "server_error");
    }
    assert_eq!(h.client_credentials().await.status(), StatusCode::OK);
    let stats = h.sandbox.stats();
    assert_eq!(stats.token_requests_total, 3);
    assert_eq!(stats.client_credentials_grants, 1);
}

#[tokio::test]
async fn token_fault_does_not_spend_the_code() {
    let h = start(config()).await;
    let code = h.code().await;
    h.sandbox.faults().fail_token_with_status(503, 1);
    let response = h.exchange(&code, VERIFIER).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.exchange(&code, VERIFIER).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_rate_limit_fault() {
    let h = start(config()).await;
    h.sandbox.faults().token_rate_limited(7, 2);
    for _ in 0..2 {
        let response = h.client_credentials().await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
    }
    assert_eq!(h.client_credentials().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_invalid_grant_fault() {
    let h = start(config()).await;
    let tokens = h.tokens().await;
    h.sandbox.faults().token_invalid_grant(1);
    let refresh_token = str_of(&tokens, "refresh_token");
    let response = h.refresh(refresh_token).await;
    let error = oauth_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error, "invalid_grant");
    assert_eq!(h.refresh(refresh_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_delay_fault() {
    let h = start(config()).await;
    h.sandbox.faults().delay_token(DELAY, 2);
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(h.client_credentials().await.status(), StatusCode::OK);
        assert!(started.elapsed() >= DELAY);
    }
    let started = Instant::now();
    assert_eq!(h.client_credentials().await.status(), StatusCode::OK);
    assert!(started.elapsed() < DELAY);
}

#[tokio::test]
async fn api_unauthorized_fault_even_with_a_good_token() {
    let h = start(config()).await;
    let token = access_token(&h).await;
    h.sandbox.faults().api_unauthorized(2);
    for _ in 0..2 {
        let response = api(&h, &token).await;
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        let error = oauth_error(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(error, "invalid_token");
    }
    assert_eq!(api(&h, &token).await.status(), StatusCode::OK);
    assert_eq!(h.sandbox.stats().api_requests, 3);
}

#[tokio::test]
async fn api_rate_limit_fault_applies_before_the_token_is_checked() {
    let h = start(config()).await;
    h.sandbox.faults().api_rate_limited(3, 2);
    for _ in 0..2 {
        let response = api(&h, "not-a-token").await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "3");
    }
    assert_eq!(
        api(&h, "not-a-token").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn api_delay_fault() {
    let h = start(config()).await;
    let token = access_token(&h).await;
    h.sandbox.faults().delay_api(DELAY, 1);
    let started = Instant::now();
    assert_eq!(api(&h, &token).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= DELAY);
    let started = Instant::now();
    assert_eq!(api(&h, &token).await.status(), StatusCode::OK);
    assert!(started.elapsed() < DELAY);
}

#[tokio::test]
async fn faults_queue_in_order_and_clear() {
    let h = start(config()).await;
    let faults = h.sandbox.faults();
    faults.fail_token_with_status(502, 1);
    faults.token_rate_limited(1, 1);
    let first = h.client_credentials().await.status();
    let second = h.client_credentials().await.status();
    assert_eq!(
        [first, second],
        [StatusCode::BAD_GATEWAY, StatusCode::TOO_MANY_REQUESTS]
    );
    faults.token_invalid_grant(5);
    faults.clear();
    assert_eq!(h.client_credentials().await.status(), StatusCode::OK);
}

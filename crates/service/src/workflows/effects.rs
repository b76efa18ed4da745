//! How workflow steps reach the outside world from a worker: plain HTTP (refusing private
//! and loopback addresses unless allowed) and the user's integration through the same
//! refresh gate as the proxy. Also the step journal over the store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use plugboard_core::{ProjectId, UserId, now_millis};
use plugboard_engine::{
    EffectError, Effects, HttpRequest, HttpResponse, Journal, JournalError, StepRecord,
};
use plugboard_store::Store;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use uuid::Uuid;

use crate::connect::{ConnectService, ProxyRequest, UpstreamError};
use crate::error::ServiceError;

/// A journal of one execution, kept in the store. The records are read once, when a run
/// starts (one query instead of one per step); every save goes to the store before the
/// run continues.
pub struct StoreJournal {
    store: Arc<dyn Store>,
    execution: Uuid,
    known: Mutex<HashMap<String, StepRecord>>,
    /// Scrubbed from what is saved (the run itself keeps the real values; a run resumed
    /// from the journal sees them redacted).
    secrets: Vec<String>,
}

impl StoreJournal {
    /// `first_claim`: no worker held the execution before, so it has no records to read.
    pub async fn open(
        store: Arc<dyn Store>,
        execution: Uuid,
        first_claim: bool,
        secrets: Vec<String>,
    ) -> Result<Self, ServiceError> {
        let mut known = HashMap::new();
        let records = if first_claim {
            Vec::new()
        } else {
            store.list_steps(execution).await?
        };
        for (key, record, _) in records {
            let record = serde_json::from_value(record)
                .map_err(|e| ServiceError::Internal(format!("step `{key}`: {e}")))?;
            known.insert(key, record);
        }
        Ok(Self {
            store,
            execution,
            known: Mutex::new(known),
            secrets,
        })
    }
}

#[async_trait]
impl Journal for StoreJournal {
    async fn load(&self, step_key: &str) -> Result<Option<StepRecord>, JournalError> {
        Ok(self
            .known
            .lock()
            .map_err(|_| JournalError("poisoned".into()))?
            .get(step_key)
            .cloned())
    }

    async fn save(&self, step_key: &str, record: &StepRecord) -> Result<(), JournalError> {
        let value = serde_json::to_value(record).map_err(|e| JournalError(e.to_string()))?;
        let value = plugboard_engine::scrub_value(value, &self.secrets);
        self.store
            .save_step(self.execution, step_key, &value, now_millis())
            .await
            .map_err(|e| JournalError(e.to_string()))?;
        self.known
            .lock()
            .map_err(|_| JournalError("poisoned".into()))?
            .insert(step_key.to_owned(), record.clone());
        Ok(())
    }
}

/// The effects of one execution.
pub struct WorkerEffects {
    pub http: reqwest::Client,
    pub connect: Arc<ConnectService>,
    pub project: ProjectId,
    pub user: UserId,
    pub integration: String,
    pub credential: Option<Uuid>,
    /// Whether `http` steps may call private, loopback and link-local addresses.
    pub allow_private: bool,
}

#[async_trait]
impl Effects for WorkerEffects {
    async fn http(&self, request: HttpRequest) -> Result<HttpResponse, EffectError> {
        let url = url::Url::parse(&request.url)
            .map_err(|e| EffectError::Permanent(format!("invalid URL `{}`: {e}", request.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EffectError::Permanent(
                "only http(s) URLs are allowed".into(),
            ));
        }
        if !self.allow_private {
            refuse_private(&url).await?;
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| EffectError::Permanent(format!("bad method `{}`", request.method)))?;
        let mut call = self
            .http
            .request(method, url)
            .headers(headers_of(&request)?)
            .header("idempotency-key", &request.idempotency_key);
        if let Some(body) = &request.body {
            call = call.json(body);
        }
        let response = call.send().await.map_err(|e| EffectError::Transient {
            message: e.without_url().to_string(),
            retry_after: None,
        })?;
        let status = response.status().as_u16();
        let retry_after = plugboard_connect::oauth::retry_after(response.headers());
        let bytes = response.bytes().await.map_err(|e| EffectError::Transient {
            message: e.without_url().to_string(),
            retry_after: None,
        })?;
        Ok(HttpResponse {
            status,
            body: body_value(&bytes),
            retry_after,
        })
    }

    async fn integration(&self, request: HttpRequest) -> Result<HttpResponse, EffectError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| EffectError::Permanent(format!("bad method `{}`", request.method)))?;
        let mut headers = headers_of(&request)?;
        headers.insert(
            HeaderName::from_static("idempotency-key"),
            HeaderValue::from_str(&request.idempotency_key)
                .map_err(|_| EffectError::Permanent("bad idempotency key".into()))?,
        );
        let body = match &request.body {
            Some(body) => {
                headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let proxy = ProxyRequest {
            integration: self.integration.clone(),
            selected: self.credential,
            method,
            path_and_query: request.url.clone(),
            headers,
            body,
        };
        match self.connect.proxy(self.project, &self.user, &proxy).await {
            Ok(answer) => Ok(HttpResponse {
                status: answer.status,
                retry_after: plugboard_connect::oauth::retry_after(&answer.headers),
                body: body_value(&answer.body),
            }),
            Err(e) => Err(effect_error(e)),
        }
    }

    fn now_ms(&self) -> i64 {
        now_millis()
    }
}

fn effect_error(e: ServiceError) -> EffectError {
    match e {
        ServiceError::Upstream(UpstreamError::BadRequest(why)) => EffectError::Permanent(why),
        ServiceError::Upstream(UpstreamError::RateLimited { retry_after }) => {
            EffectError::Transient {
                message: "the provider is rate limiting".into(),
                retry_after,
            }
        }
        ServiceError::Upstream(other) => EffectError::Transient {
            message: other.to_string(),
            retry_after: None,
        },
        ServiceError::Store(other) => EffectError::Transient {
            message: other.to_string(),
            retry_after: Some(Duration::from_secs(5)),
        },
        other => EffectError::Permanent(other.to_string()),
    }
}

fn headers_of(request: &HttpRequest) -> Result<HeaderMap, EffectError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| EffectError::Permanent(format!("bad header name `{name}`")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| EffectError::Permanent(format!("bad value for header `{name}`")))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// Refuses URLs whose host is, or resolves to, a private, loopback, link-local or
/// unspecified address (so a workflow cannot reach the server's own network).
async fn refuse_private(url: &url::Url) -> Result<(), EffectError> {
    let host = url
        .host_str()
        .ok_or_else(|| EffectError::Permanent("the URL has no host".into()))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| EffectError::Transient {
                message: format!("cannot resolve {host}: {e}"),
                retry_after: None,
            })?
            .map(|a| a.ip())
            .collect(),
    };
    if let Some(ip) = addrs.iter().find(|ip| is_private(ip)) {
        return Err(EffectError::Permanent(format!(
            "{host} is a private address ({ip}); this project may not call it"
        )));
    }
    Ok(())
}

fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(&IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "100.64.0.1",
        ] {
            assert!(is_private(&ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(!is_private(&ip.parse().unwrap()), "{ip}");
        }
    }
}

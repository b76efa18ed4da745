//! Shared pieces of the benchmarks: a closed-loop HTTP load generator and latency stats.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} requests, {} errors)",
            self.per_second(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.requests,
            self.errors
        )
    }
}

/// Sends `GET path` over `connections` keep-alive HTTP/1.1 connections, each issuing its
/// next request as soon as the previous answer is read, for `duration` after a warm-up.
pub async fn run_load(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<LoadReport> {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let path = path.to_owned();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        tasks.push(tokio::spawn(async move {
            connection_loop(addr, path, headers, start, end).await
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (lat, err) = task.await??;
        latencies.extend(lat);
        errors += err;
    }
    latencies.sort_unstable();
    Ok(LoadReport {
        requests: latencies.len(),
        errors,
        elapsed: duration,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    })
}

async fn connection_loop(
    addr: SocketAddr,
    path: String,
    headers: Vec<(String, String)>,
    start: Instant,
    end: Instant,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut latencies = Vec::with_capacity(100_000);
    let mut errors = 0;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let mut request = Request::get(&path).header("host", addr.to_string());
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new())?)
            .await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        if sent >= start {
            latencies.push(sent.elapsed());
            if !ok {
                errors += 1;
            }
        }
    }
    Ok((latencies, errors))
}

/// Nearest-rank percentile of a sorted slice.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

//! soak-client: the soak harness's load, from inside the mesh. Sends
//! `RATE` HTTP GETs a second to `HTTP_URL` (open loop: a slow answer does
//! not slow the next request), keeps `TCP_CONNECTIONS` long-lived
//! connections to `TCP_TARGET` exchanging a Redis `PING` every second,
//! and counts every outcome by cause in 10-second windows
//! (`osm_demo::soak`), served as JSON at `GET /report` on `REPORT_PORT`
//! (default 9000) with `nowMs`, the client's clock; `GET /reset` starts
//! the count and the clock again (the harness calls it once the mesh is
//! up, so start-up is not counted).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use osm_demo::{
    env_or, http, port_from_env,
    soak::{Cause, Tally, classify_error},
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TIMEOUT: Duration = Duration::from_secs(5);
const WINDOW_MS: u64 = 10_000;
/// Requests in flight beyond which one is dropped (and counted).
const MAX_IN_FLIGHT: usize = 2000;

/// The count and the clock it is kept by.
struct Counting {
    start: Instant,
    tally: Tally,
}

type Shared = Arc<Mutex<Counting>>;

fn since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Counts an outcome at the time it is known.
fn record(shared: &Shared, kind: &'static str, outcome: Result<Duration, (Cause, String)>) {
    if let Ok(mut c) = shared.lock() {
        let at = since(c.start);
        match outcome {
            Ok(latency) => c.tally.ok(
                kind,
                at,
                u32::try_from(latency.as_micros()).unwrap_or(u32::MAX),
            ),
            Err((cause, detail)) => c.tally.failed(kind, at, cause, detail),
        }
    }
}

/// The whole error chain, for the cause and the report.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn one_request(client: &http::HttpClient, url: &str) -> Result<Duration, (Cause, String)> {
    let began = Instant::now();
    let request = hyper::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| (Cause::Connect, e.to_string()))?;
    let response = match tokio::time::timeout(TIMEOUT, client.request(request)).await {
        Err(_) => return Err((Cause::Timeout, "no answer in 5 s".into())),
        Ok(Err(e)) => {
            let text = chain(&e);
            let cause = if e.is_connect() {
                Cause::Connect
            } else {
                classify_error(&text)
            };
            return Err((cause, text));
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    let body = tokio::time::timeout(TIMEOUT, response.into_body().collect()).await;
    match body {
        Err(_) => Err((Cause::Timeout, "body not read in 5 s".into())),
        Ok(Err(e)) => Err((Cause::Reset, chain(&e))),
        Ok(Ok(_)) if (200..300).contains(&status) => Ok(began.elapsed()),
        Ok(Ok(b)) => {
            let text = String::from_utf8_lossy(&b.to_bytes())
                .chars()
                .take(120)
                .collect();
            Err((Cause::Status(status), text))
        }
    }
}

async fn http_load(url: String, rate: f64, tally: Shared) {
    let client = http::client();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tick.tick().await;
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            record(
                &tally,
                "http",
                Err((Cause::Overload, "too many in flight".into())),
            );
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (client, url, tally, in_flight) = (
            client.clone(),
            url.clone(),
            tally.clone(),
            in_flight.clone(),
        );
        tokio::spawn(async move {
            let outcome = one_request(&client, &url).await;
            record(&tally, "http", outcome);
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// One long-lived connection: a PING a second, reconnecting after a
/// failure (counted).
async fn tcp_exchange(target: String, tally: Shared) {
    loop {
        let mut stream =
            match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(&target)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    record(&tally, "tcp", Err((Cause::Connect, e.to_string())));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(_) => {
                    record(&tally, "tcp", Err((Cause::Timeout, "connect".into())));
                    continue;
                }
            };
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let began = Instant::now();
            let exchange = async {
                stream.write_all(b"PING\r\n").await?;
                let mut answer = [0u8; 7];
                stream.read_exact(&mut answer).await?;
                Ok::<_, std::io::Error>(answer)
            };
            let outcome = match tokio::time::timeout(TIMEOUT, exchange).await {
                Ok(Ok(answer)) if &answer == b"+PONG\r\n" => Ok(began.elapsed()),
                Ok(Ok(answer)) => Err((
                    Cause::Garbled,
                    String::from_utf8_lossy(&answer).into_owned(),
                )),
                Ok(Err(e)) => Err((Cause::Reset, e.to_string())),
                Err(_) => Err((Cause::Timeout, "no PONG in 5 s".into())),
            };
            let failed = outcome.is_err();
            record(&tally, "tcp", outcome);
            if failed {
                break;
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tally: Shared = Arc::new(Mutex::new(Counting {
        start: Instant::now(),
        tally: Tally::new(WINDOW_MS),
    }));
    let rate: f64 = env_or("RATE", "500")
        .parse()
        .map_err(|_| anyhow::anyhow!("RATE is not a number"))?;
    let connections: usize = env_or("TCP_CONNECTIONS", "4")
        .parse()
        .map_err(|_| anyhow::anyhow!("TCP_CONNECTIONS is not a number"))?;
    let target = env_or("TCP_TARGET", "redis.soak:6379");
    for _ in 0..connections {
        tokio::spawn(tcp_exchange(target.clone(), tally.clone()));
    }
    tokio::spawn(http_load(
        env_or("HTTP_URL", "http://server.soak:8080/"),
        rate,
        tally.clone(),
    ));
    let port = port_from_env("REPORT_PORT", 9000)?;
    http::serve(port, move |req| {
        let report = tally.lock().map_or_else(
            |_| serde_json::Value::Null,
            |mut c| {
                if req.uri().path() == "/reset" {
                    c.start = Instant::now();
                    c.tally = Tally::new(WINDOW_MS);
                }
                let mut report = c.tally.report();
                report["nowMs"] = since(c.start).into();
                report
            },
        );
        async move { http::json(200, &report) }
    })
    .await
}

//! bookbuyer and bookthief: buy a book from the bookstore over and over,
//! counting purchases by the bookstore identity that answered and
//! failures by status, and serve the counters.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;

use crate::{env_or, http, port_from_env};

#[derive(Debug, Default)]
struct Counters {
    ok: u64,
    by_identity: BTreeMap<String, u64>,
    failed: u64,
    by_status: BTreeMap<String, u64>,
    last_error: String,
}

/// Runs a buyer named `app` (sent as `client-app`, and in the user agent
/// the bookstore's route match expects).
pub async fn run(app: &'static str) -> anyhow::Result<()> {
    let url = env_or("BOOKSTORE_URL", "http://bookstore.bookstore:14001");
    let interval = Duration::from_millis(
        env_or("BUY_INTERVAL_MS", "250")
            .parse()
            .map_err(|_| anyhow::anyhow!("BUY_INTERVAL_MS is not a number of milliseconds"))?,
    );
    let port = port_from_env("PORT", 8080)?;
    let counters = Arc::new(Mutex::new(Counters::default()));
    let shown = counters.clone();
    tokio::spawn(async move {
        if let Err(e) = http::serve(port, move |_req| {
            let c = shown.clone();
            async move {
                let c = c.lock().map(|c| {
                    json!({
                        "app": app,
                        "ok": c.ok,
                        "byIdentity": c.by_identity,
                        "failed": c.failed,
                        "byStatus": c.by_status,
                        "lastError": c.last_error,
                    })
                });
                match c {
                    Ok(v) => http::json(200, &v),
                    Err(_) => http::reply(500, "text/plain", "counters unavailable"),
                }
            }
        })
        .await
        {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
    });
    let client = http::client();
    let target = format!("{}/buy-a-book/new", url.trim_end_matches('/'));
    println!("{app}: buying from {target} every {interval:?}");
    loop {
        let request = hyper::Request::get(&target)
            .header("client-app", app)
            .header("user-agent", format!("{app}-http-client/1.0"))
            .body(Full::new(Bytes::new()))?;
        let outcome = http::send(&client, request, Duration::from_secs(5)).await;
        if let Ok(mut c) = counters.lock() {
            match outcome {
                Ok(a) if a.status == 200 => {
                    c.ok += 1;
                    let identity = a
                        .headers
                        .get("identity")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("unknown")
                        .to_string();
                    *c.by_identity.entry(identity).or_default() += 1;
                }
                Ok(a) => {
                    c.failed += 1;
                    *c.by_status.entry(a.status.to_string()).or_default() += 1;
                    c.last_error = format!("HTTP {}: {}", a.status, a.body.trim());
                }
                Err(e) => {
                    c.failed += 1;
                    *c.by_status.entry("error".into()).or_default() += 1;
                    c.last_error = e;
                }
            }
            if (c.ok + c.failed) % 20 == 1 {
                println!(
                    "{app}: {} ok {:?}, {} failed {:?} {}",
                    c.ok, c.by_identity, c.failed, c.by_status, c.last_error
                );
            }
        }
        tokio::time::sleep(interval).await;
    }
}

//! bookstore (v1 and v2 differ by IDENTITY): sells a book on
//! `GET /buy-a-book/new`, answering with its identity in a header, and
//! asks the warehouse to restock each sale.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use osm_demo::{env_or, http, port_from_env};
use serde_json::json;

#[derive(Default)]
struct Counters {
    sold: AtomicU64,
    restocked: AtomicU64,
    restock_failed: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let identity = env_or("IDENTITY", "bookstore");
    let warehouse = env_or(
        "BOOKWAREHOUSE_URL",
        "http://bookwarehouse.bookwarehouse:14001",
    );
    let port = port_from_env("PORT", 14001)?;
    let counters = Arc::new(Counters::default());
    let client = http::client();
    let restock = format!("{}/restock-books", warehouse.trim_end_matches('/'));
    println!("{identity}: selling books, restocking from {restock}");
    http::serve(port, move |req| {
        let counters = counters.clone();
        let identity = identity.clone();
        let client = client.clone();
        let restock = restock.clone();
        async move {
            let path = req.uri().path().to_string();
            let counts = || {
                json!({
                    "identity": identity,
                    "sold": counters.sold.load(Ordering::Relaxed),
                    "restocked": counters.restocked.load(Ordering::Relaxed),
                    "restockFailed": counters.restock_failed.load(Ordering::Relaxed),
                })
            };
            let mut answer = if path.contains("a-book") && path.ends_with("new") {
                counters.sold.fetch_add(1, Ordering::Relaxed);
                // Restocking happens beside the sale, as in OSM's demo.
                tokio::spawn({
                    let counters = counters.clone();
                    async move {
                        let request = hyper::Request::post(&restock)
                            .header("client-app", "bookstore")
                            .body(Full::new(Bytes::new()));
                        let ok = match request {
                            Ok(r) => http::send(&client, r, Duration::from_secs(5))
                                .await
                                .is_ok_and(|a| a.status == 200),
                            Err(_) => false,
                        };
                        let counter = if ok {
                            &counters.restocked
                        } else {
                            &counters.restock_failed
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                });
                http::reply(
                    200,
                    "text/plain",
                    format!("bought a book from {identity}\n"),
                )
            } else if path == "/books-bought" || path == "/counters" {
                http::json(200, &counts())
            } else {
                http::reply(404, "text/plain", "no such page\n")
            };
            if let Ok(v) = hyper::header::HeaderValue::from_str(&identity) {
                answer.headers_mut().insert("identity", v);
            }
            answer
        }
    })
    .await
}

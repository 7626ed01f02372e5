//! bookwarehouse: `POST /restock-books` adds a book to the stock it keeps
//! in Redis (DATABASE_ADDR, reached through the mesh as opaque TCP).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use osm_demo::{env_or, http, port_from_env};
use serde_json::json;
use tokio::sync::Mutex;

#[derive(Default)]
struct Counters {
    restocked: AtomicU64,
    db_errors: AtomicU64,
}

/// One connection to the database, made again after a failure.
struct Database {
    url: String,
    connection: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl Database {
    async fn increment(&self) -> Result<i64, String> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            let client = redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
            let conn = tokio::time::timeout(
                Duration::from_secs(3),
                client.get_multiplexed_async_connection(),
            )
            .await
            .map_err(|_| "connecting to the database timed out".to_string())?
            .map_err(|e| e.to_string())?;
            *slot = Some(conn);
        }
        let Some(conn) = slot.as_mut() else {
            return Err("no connection".into());
        };
        let result = tokio::time::timeout(
            Duration::from_secs(3),
            redis::cmd("INCR")
                .arg("books:stock")
                .query_async::<i64>(conn),
        )
        .await
        .map_err(|_| "the database did not answer".to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = env_or("DATABASE_ADDR", "redis.bookwarehouse:6379");
    let port = port_from_env("PORT", 14001)?;
    let db = Arc::new(Database {
        url: format!("redis://{addr}/"),
        connection: Mutex::new(None),
    });
    let counters = Arc::new(Counters::default());
    println!("bookwarehouse: keeping the stock in redis at {addr}");
    http::serve(port, move |req| {
        let db = db.clone();
        let counters = counters.clone();
        async move {
            match (req.method().as_str(), req.uri().path()) {
                ("POST", "/restock-books") => match db.increment().await {
                    Ok(stock) => {
                        counters.restocked.fetch_add(1, Ordering::Relaxed);
                        http::json(200, &json!({"stock": stock}))
                    }
                    Err(e) => {
                        counters.db_errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("database: {e}");
                        http::reply(503, "text/plain", format!("database unavailable: {e}\n"))
                    }
                },
                (_, "/counters") => http::json(
                    200,
                    &json!({
                        "restocked": counters.restocked.load(Ordering::Relaxed),
                        "dbErrors": counters.db_errors.load(Ordering::Relaxed),
                    }),
                ),
                _ => http::reply(404, "text/plain", "no such page\n"),
            }
        }
    })
    .await
}

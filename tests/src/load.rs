//! Steady traffic for failure tests: paced requests over kept-alive
//! connections, every failure counted (a transport error or an unexpected
//! status).

use std::{net::SocketAddr, time::Duration};

use crate::client::Http1Conn;

/// What a run of steady traffic saw.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub ok: usize,
    /// Each failure: the status, or the error.
    pub failures: Vec<String>,
}

/// Sends `GET path` with `Host: host` to `addr` at about `rate` requests
/// per second over `workers` connections until `stop` fires. Only `200`
/// counts as success.
pub async fn steady_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    rate: u32,
    workers: u32,
    stop: tokio::sync::watch::Receiver<bool>,
) -> LoadReport {
    let period = Duration::from_secs_f64(f64::from(workers) / f64::from(rate.max(1)));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let host = host.to_string();
        let path = path.to_string();
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut report = LoadReport::default();
            let mut conn: Option<Http1Conn> = None;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return report,
                }
                if *stop.borrow() {
                    return report;
                }
                if conn.is_none() {
                    match Http1Conn::connect(addr).await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            report.failures.push(format!("connect: {e}"));
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                match c.get(&host, &path, &[]).await {
                    Ok(a) if a.status == 200 => report.ok += 1,
                    Ok(a) => {
                        report
                            .failures
                            .push(format!("status {}: {}", a.status, a.body.trim()))
                    }
                    Err(e) => {
                        report.failures.push(format!("request: {e}"));
                        conn = None;
                    }
                }
            }
        }));
    }
    let mut total = LoadReport::default();
    for t in tasks {
        if let Ok(r) = t.await {
            total.ok += r.ok;
            total.failures.extend(r.failures);
        }
    }
    total
}

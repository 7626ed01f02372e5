//! osm-echo: answers every request with a JSON description of it and of the
//! pod that answered (`osm_demo::echo`), for route tests and for users
//! debugging where a route sends requests. HTTP/1.1 and HTTP/2 (a gRPC
//! call is described like any request: its path is `/<service>/<method>`).
//! Each request is logged on stdout as `METHOD PATH host=HOST`.
//! A request with `x-echo-delay-ms: N` is answered after N milliseconds
//! (for timeout tests). Environment: `PORT` (default 8080; several as `8080,8081`), `BIND`, and
//! the pod's `POD_NAMESPACE`, `POD_NAME`, `SERVICE`.

use osm_demo::{echo, env_or, http};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ports = env_or("PORT", "8080")
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| anyhow::anyhow!("PORT: {p:?} is not a port number"))
        })
        .collect::<anyhow::Result<Vec<u16>>>()?;
    let pod = echo::Pod {
        namespace: env_or("POD_NAMESPACE", ""),
        name: env_or("POD_NAME", ""),
        service: env_or("SERVICE", ""),
    };
    let mut servers = tokio::task::JoinSet::new();
    for port in ports {
        let pod = pod.clone();
        servers.spawn(http::serve(port, move |req| {
            let description = echo::describe(&req, &pod);
            // One line per request on stdout (the pod's log): what a mirror
            // test or a user debugging routes reads.
            println!(
                "{} {} host={}",
                description["method"].as_str().unwrap_or(""),
                description["path"].as_str().unwrap_or(""),
                description["host"].as_str().unwrap_or("")
            );
            let answer = http::json(200, &description);
            let delay = echo::delay(&req);
            async move {
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                answer
            }
        }));
    }
    // The first server to fail ends the app (the others would answer on
    // some ports only).
    match servers.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(e.into()),
        None => Ok(()),
    }
}

//! echo: answers every request with a JSON description of it and of the
//! pod that answered (`osm_demo::echo`), for route tests and for users
//! debugging where a route sends requests. Environment: `PORT` (default
//! 8080), `BIND`, and the pod's `POD_NAMESPACE`, `POD_NAME`, `SERVICE`.

use osm_demo::{echo, env_or, http, port_from_env};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port = port_from_env("PORT", 8080)?;
    let pod = echo::Pod {
        namespace: env_or("POD_NAMESPACE", ""),
        name: env_or("POD_NAME", ""),
        service: env_or("SERVICE", ""),
    };
    http::serve(port, move |req| {
        let answer = http::json(200, &echo::describe(&req, &pod));
        async move { answer }
    })
    .await
}

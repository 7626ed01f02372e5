//! The bookstore in miniature on this machine: bookstore v1 and v2 behind
//! their sidecars, bookbuyer and bookthief sidecars in front, mTLS between
//! them and an SMI policy that lets bookbuyer buy and denies bookthief.
//!
//! `cargo run -p osm-tests --example bookstore` prints what each client gets,
//! then keeps the mesh up for curl until Ctrl-C (`-- --once` exits at once).
//! The full demo with network namespaces and iptables is `osm local demo`.

#![allow(clippy::unwrap_used)]

use osm_tests::{client::Http1Conn, mesh::Fixture};

const HOST: &str = "bookstore.bookstore:14001";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let once = std::env::args().any(|a| a == "--once");
    let f = Fixture::start().await;
    println!(
        "bookstore-v1 app {} behind its sidecar at {} (mTLS only)",
        f.v1.addr,
        f.store_v1.inbound()
    );
    println!(
        "bookstore-v2 app {} behind its sidecar at {} (mTLS only)",
        f.v2.addr,
        f.store_v2.inbound()
    );
    println!(
        "bookbuyer sidecar outbound {}; bookthief sidecar outbound {}",
        f.buyer.outbound(),
        f.thief.outbound()
    );
    println!();
    for (who, proxy) in [("bookbuyer", &f.buyer), ("bookthief", &f.thief)] {
        let mut conn = Http1Conn::connect(proxy.outbound()).await?;
        for path in ["/books/buy", "/admin"] {
            let answer = conn.get(HOST, path, &[]).await?;
            println!(
                "{who:>10} GET {path:<11} -> {} {}",
                answer.status,
                answer.body.trim()
            );
        }
    }
    let metrics = f.buyer.metrics();
    let requests = osm_tests::metric_value(&metrics, "osm_request_total", &[]);
    println!("\nbookbuyer's sidecar counted {requests} requests (osm_request_total)");
    if once {
        return Ok(());
    }
    println!(
        "\nTry: curl -H 'Host: {HOST}' http://{}/books/buy",
        f.buyer.outbound()
    );
    println!(
        "     curl -H 'Host: {HOST}' http://{}/books/buy",
        f.thief.outbound()
    );
    println!(
        "     curl http://{}/stats/prometheus",
        f.buyer.addrs.metrics
    );
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

//! httpget URL [HEADER:VALUE...]: one GET, the status and body printed;
//! exits 0 on 2xx, 22 otherwise (as `curl -f`), 7 when nothing answers.
//! The demo's stand-in for curl inside pods.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: httpget URL [HEADER:VALUE...]");
        std::process::exit(2);
    };
    let mut request = hyper::Request::get(&url);
    for header in args {
        if let Some((k, v)) = header.split_once(':') {
            request = request.header(k.trim(), v.trim());
        }
    }
    let request = match request.body(Full::new(Bytes::new())) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("httpget: {url}: {e}");
            std::process::exit(2);
        }
    };
    let client = osm_demo::http::client();
    match osm_demo::http::send(&client, request, Duration::from_secs(10)).await {
        Ok(answer) => {
            println!("{}", answer.status);
            print!("{}", answer.body);
            std::process::exit(if (200..300).contains(&answer.status) {
                0
            } else {
                22
            });
        }
        Err(e) => {
            eprintln!("httpget: {url}: {e}");
            std::process::exit(7);
        }
    }
}

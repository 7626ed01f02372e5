//! httpget [OPTIONS] URL [HEADER:VALUE...]: one GET, the status and body
//! printed; exits 0 on 2xx, 22 otherwise (as `curl -f`), 7 when nothing
//! answers. The demo's stand-in for curl inside pods.
//!
//! Options (before the URL):
//! - `-X METHOD`: another method than GET;
//! - `-i`: the response headers too, after the status (`name: value`
//!   lines, then an empty line, then the body);
//! - `--http2`: HTTP/2 with prior knowledge (h2c), as gRPC clients speak;
//! - `--count N`: N requests one after the other, one line per answer
//!   (`status body`, the body on one line); exits 0 when all were 2xx.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use osm_demo::http::{Answer, HttpClient, client, client_http2, send};

struct Options {
    method: String,
    headers_too: bool,
    http2: bool,
    count: Option<u32>,
    url: String,
    headers: Vec<(String, String)>,
}

fn usage() -> ! {
    eprintln!("usage: httpget [-X METHOD] [-i] [--http2] [--count N] URL [HEADER:VALUE...]");
    std::process::exit(2);
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        method: "GET".into(),
        headers_too: false,
        http2: false,
        count: None,
        url: String::new(),
        headers: Vec::new(),
    };
    loop {
        match args.next().as_deref() {
            Some("-X") => o.method = args.next().unwrap_or_else(|| usage()),
            Some("-i") => o.headers_too = true,
            Some("--http2") => o.http2 = true,
            Some("--count") => {
                o.count = Some(
                    args.next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| usage()),
                )
            }
            Some(url) if !url.starts_with('-') => {
                o.url = url.to_string();
                break;
            }
            _ => usage(),
        }
    }
    for header in args {
        if let Some((k, v)) = header.split_once(':') {
            o.headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    o
}

async fn once(client: &HttpClient, o: &Options) -> Result<Answer, String> {
    let mut request = hyper::Request::builder()
        .method(o.method.as_str())
        .uri(&o.url);
    for (k, v) in &o.headers {
        request = request.header(k, v);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    send(client, request, Duration::from_secs(10)).await
}

#[tokio::main]
async fn main() {
    let o = options();
    let client = if o.http2 { client_http2() } else { client() };
    let mut all_ok = true;
    for _ in 0..o.count.unwrap_or(1) {
        match once(&client, &o).await {
            Ok(answer) => {
                all_ok &= (200..300).contains(&answer.status);
                if o.count.is_some() {
                    println!("{} {}", answer.status, answer.body.replace('\n', " "));
                    continue;
                }
                println!("{}", answer.status);
                if o.headers_too {
                    for (name, value) in &answer.headers {
                        println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
                    }
                    println!();
                }
                print!("{}", answer.body);
            }
            Err(e) => {
                eprintln!("httpget: {}: {e}", o.url);
                std::process::exit(7);
            }
        }
    }
    std::process::exit(if all_ok { 0 } else { 22 });
}

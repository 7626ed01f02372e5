//! The demo apps as processes on 127.0.0.1: bookstore sells and counts,
//! bookbuyer buys from it and counts by identity, httpget reports status
//! and exit codes as the end-to-end tests rely on.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

struct App(Child, u16);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an app on 127.0.0.1 port 0 and reads the port it prints.
fn start(exe: &str, env: &[(&str, &str)]) -> App {
    let mut child = Command::new(exe)
        .env("BIND", "127.0.0.1")
        .env("PORT", "0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let line = lines.next().expect("the app printed its address").unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.rsplit_once(':').unwrap().1.parse().unwrap();
        }
    };
    // Keep draining stdout so the app never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    App(child, port)
}

fn httpget(url: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_httpget"))
        .arg(url)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn bookstore_sells_with_its_identity_and_counts() {
    let store = start(
        env!("CARGO_BIN_EXE_bookstore"),
        &[
            ("IDENTITY", "bookstore-v9"),
            ("BOOKWAREHOUSE_URL", "http://127.0.0.1:9"),
        ],
    );
    let base = format!("http://127.0.0.1:{}", store.1);
    let (code, out) = httpget(&format!("{base}/buy-a-book/new"));
    assert_eq!(
        (code, out.as_str()),
        (0, "200\nbought a book from bookstore-v9\n")
    );
    let (code, out) = httpget(&format!("{base}/nothing"));
    assert_eq!(code, 22, "{out}");
    assert!(out.starts_with("404"));
    let (code, out) = httpget(&format!("{base}/counters"));
    assert_eq!(code, 0);
    let counters: serde_json::Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    assert_eq!(counters["sold"], 1);
    assert_eq!(counters["identity"], "bookstore-v9");
}

#[test]
fn bookbuyer_counts_purchases_by_the_identity_that_served_them() {
    let store = start(
        env!("CARGO_BIN_EXE_bookstore"),
        &[
            ("IDENTITY", "bookstore-v1"),
            ("BOOKWAREHOUSE_URL", "http://127.0.0.1:9"),
        ],
    );
    let url = format!("http://127.0.0.1:{}", store.1);
    let buyer = start(
        env!("CARGO_BIN_EXE_bookbuyer"),
        &[("BOOKSTORE_URL", &url), ("BUY_INTERVAL_MS", "20")],
    );
    let began = Instant::now();
    loop {
        let (_, out) = httpget(&format!("http://127.0.0.1:{}/counters", buyer.1));
        let counters: serde_json::Value =
            serde_json::from_str(out.lines().nth(1).unwrap_or("{}")).unwrap_or_default();
        if counters["byIdentity"]["bookstore-v1"].as_u64().unwrap_or(0) >= 3 {
            assert_eq!(counters["failed"], 0, "{counters}");
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "no purchases: {counters}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn httpget_exits_like_curl_f() {
    let (code, _) = httpget("http://127.0.0.1:9/");
    assert_eq!(code, 7, "nothing listens on the discard port");
    let out = Command::new(env!("CARGO_BIN_EXE_httpget"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let usage = String::from_utf8_lossy(&out.stderr);
    assert!(
        usage.contains("usage: httpget") && usage.contains(" URL "),
        "{usage}"
    );
}

#[test]
fn echo_describes_the_request_and_the_pod() {
    let echo = start(
        env!("CARGO_BIN_EXE_osm-echo"),
        &[
            ("POD_NAMESPACE", "shop"),
            ("POD_NAME", "echo-0"),
            ("SERVICE", "echo"),
        ],
    );
    let (code, out) = httpget(&format!("http://127.0.0.1:{}/books/1?x=1", echo.1));
    assert_eq!(code, 0, "{out}");
    let described: serde_json::Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    assert_eq!(described["path"], "/books/1");
    assert_eq!(described["query"], "x=1");
    assert_eq!(described["method"], "GET");
    assert_eq!(described["pod"], "echo-0");
    assert_eq!(described["namespace"], "shop");

    // httpget's options: another method, the response headers, a header
    // sent; several requests, one line each; HTTP/2 with prior knowledge.
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_httpget"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let url = format!("http://127.0.0.1:{}/orders", echo.1);
    let (code, out) = run(&["-X", "POST", "-i", &url, "x-tenant:a"]);
    assert_eq!(code, 0, "{out}");
    let mut lines = out.split('\n');
    assert_eq!(lines.next(), Some("200"));
    let headers: Vec<&str> = lines.by_ref().take_while(|l| !l.is_empty()).collect();
    assert!(
        headers.contains(&"content-type: application/json"),
        "{headers:?}"
    );
    let body: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["headers"]["x-tenant"][0], "a");
    let (code, out) = run(&["--count", "3", "--http2", &url]);
    assert_eq!(code, 0, "{out}");
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), 3, "{out}");
    assert!(
        answers
            .iter()
            .all(|l| l.starts_with("200 {") && l.contains("HTTP/2.0")),
        "{out}"
    );
}

//! The access log's lines are a contract (users parse them): every field,
//! its name, order and form, in both formats.

use super::access_log::{HttpEntry, LogParts, TextLine as _, Timestamp};

fn at(rfc3339: &str) -> Timestamp {
    Timestamp(humantime::parse_rfc3339(rfc3339).unwrap())
}

fn full_entry() -> HttpEntry {
    let request = http::Request::builder()
        .method("POST")
        .uri("http://bookstore.bookstore:14001/books?page=2")
        .header("user-agent", "bookbuyer/1.0 \"quoted\"")
        .header("x-request-id", "4b2f-11")
        .body(())
        .unwrap();
    let mut parts = LogParts::of(&request);
    parts.timestamp = at("2026-12-05T02:03:18.123Z");
    HttpEntry {
        response_flags: "UAEX",
        peer_identity: Some("spiffe://cluster.local/ns/bookstore/sa/bookstore".into()),
        response_code: 403,
        duration_ms: 1.25,
        bytes_received: 7,
        bytes_sent: 19,
        upstream_service: Some("bookstore/bookstore".into()),
        upstream_host: Some("10.0.0.7:14001".parse().unwrap()),
        source_identity: Some("spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer".into()),
        authorization: Some("bookstore/bookbuyer-access".into()),
        error: Some("denied: \"POST\"".to_string()),
        ..HttpEntry::of(parts, "inbound")
    }
}

#[test]
fn a_full_line_keeps_its_fields_names_and_order_in_json() {
    let json = serde_json::to_string(&full_entry()).unwrap();
    assert_eq!(
        json,
        r#"{"response_flags":"UAEX","peer_identity":"spiffe://cluster.local/ns/bookstore/sa/bookstore","timestamp":"2026-12-05T02:03:18.123Z","direction":"inbound","protocol":"HTTP/1.1","method":"POST","authority":"bookstore.bookstore:14001","path":"/books","response_code":403,"duration_ms":1.25,"bytes_received":7,"bytes_sent":19,"upstream_service":"bookstore/bookstore","upstream_host":"10.0.0.7:14001","source_identity":"spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer","authorization":"bookstore/bookbuyer-access","user_agent":"bookbuyer/1.0 \"quoted\"","request_id":"4b2f-11","error":"denied: \"POST\""}"#
    );
}

#[test]
fn a_full_line_keeps_its_form_in_text() {
    assert_eq!(
        full_entry().text(),
        r#"[2026-12-05T02:03:18.123Z] "POST /books HTTP/1.1" 403 UAEX 7 19 1.250 "bookstore.bookstore:14001" "10.0.0.7:14001" "bookbuyer/1.0 "quoted"" "4b2f-11" inbound upstream=bookstore/bookstore peer=spiffe://cluster.local/ns/bookstore/sa/bookstore rule=bookstore/bookbuyer-access error="denied: \"POST\"""#
    );
}

#[test]
fn a_bare_line_leaves_out_what_it_does_not_know() {
    let request = http::Request::builder()
        .uri("/healthz")
        .header("host", "[fd00::7]:8080")
        .body(())
        .unwrap();
    let mut parts = LogParts::of(&request);
    parts.timestamp = at("2026-12-05T02:03:18Z");
    let entry = HttpEntry {
        response_flags: "-",
        response_code: 200,
        upstream_host: Some("[fd00::7]:8080".parse().unwrap()),
        ..HttpEntry::of(parts, "outbound")
    };
    assert_eq!(serde_json::to_string(&entry).unwrap(), BARE_JSON);
    assert_eq!(entry.text(), BARE_TEXT);
}

const BARE_JSON: &str = r#"{"response_flags":"-","timestamp":"2026-12-05T02:03:18.000Z","direction":"outbound","protocol":"HTTP/1.1","method":"GET","authority":"[fd00::7]:8080","path":"/healthz","response_code":200,"duration_ms":0.0,"bytes_received":0,"bytes_sent":0,"upstream_host":"[fd00::7]:8080"}"#;
const BARE_TEXT: &str = r#"[2026-12-05T02:03:18.000Z] "GET /healthz HTTP/1.1" 200 - 0 0 0.000 "[fd00::7]:8080" "[fd00::7]:8080" "-" "-" outbound upstream=- peer=- rule=-"#;

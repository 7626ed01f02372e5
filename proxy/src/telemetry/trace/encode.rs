//! A finished span, and the two wire formats a collector takes: Zipkin v2
//! JSON (`POST /api/v2/spans`, what OSM's Jaeger received) and OTLP/HTTP
//! JSON (`POST /v1/traces`; ids in hex, 64-bit integers as strings, as
//! the OTLP JSON mapping says).

use std::net::SocketAddr;

use serde::Serialize;
use serde_json::{Value, json};

/// Which side of a request the span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The client's proxy: the request as it left for the service.
    Client,
    /// The server's proxy: the request as it reached the application.
    Server,
}

/// A finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: u128,
    pub id: u64,
    pub parent_id: Option<u64>,
    pub kind: Kind,
    pub name: String,
    pub start_unix_us: u64,
    pub duration_us: u64,
    /// The proxy's workload, `<name>.<namespace>`.
    pub local_service: std::sync::Arc<str>,
    pub remote: Option<SocketAddr>,
    /// The response status was an error (5xx, or no response).
    pub error: bool,
    pub tags: Vec<(&'static str, String)>,
}

/// The wire format of the collector's endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    ZipkinV2,
    Otlp,
}

impl Format {
    /// OTLP when the path is OTLP's (`/v1/traces`), else Zipkin v2.
    pub fn of_endpoint(path: &str) -> Self {
        if path.trim_end_matches('/').ends_with("/v1/traces") {
            Format::Otlp
        } else {
            Format::ZipkinV2
        }
    }
}

/// The request body carrying `spans`.
pub fn body(format: Format, spans: &[Span]) -> Vec<u8> {
    match format {
        Format::ZipkinV2 => {
            let spans: Vec<ZipkinSpan<'_>> = spans.iter().map(zipkin).collect();
            serde_json::to_vec(&spans)
        }
        Format::Otlp => serde_json::to_vec(&otlp(spans)),
    }
    .unwrap_or_default()
}

/// A span as Zipkin v2 JSON, serialized straight from the span (no
/// intermediate tree: encoding is most of what a span costs).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan<'a> {
    trace_id: Hex128,
    id: Hex64,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<Hex64>,
    kind: &'static str,
    name: &'a str,
    timestamp: u64,
    duration: u64,
    local_endpoint: ServiceName<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_endpoint: Option<Remote>,
    tags: Tags<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceName<'a> {
    service_name: &'a str,
}

#[derive(Serialize)]
struct Remote {
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv4: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv6: Option<std::net::Ipv6Addr>,
    port: u16,
}

struct Hex128(u128);
struct Hex64(u64);

impl Serialize for Hex128 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:032x}", self.0))
    }
}

impl Serialize for Hex64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:016x}", self.0))
    }
}

/// Tags as a JSON object, `error` added for a failed request.
struct Tags<'a>(&'a Span);

impl Serialize for Tags<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.tags.len() + 1))?;
        for (k, v) in &self.0.tags {
            map.serialize_entry(k, v)?;
        }
        if self.0.error {
            map.serialize_entry("error", "true")?;
        }
        map.end()
    }
}

fn zipkin(span: &Span) -> ZipkinSpan<'_> {
    ZipkinSpan {
        trace_id: Hex128(span.trace_id),
        id: Hex64(span.id),
        parent_id: span.parent_id.map(Hex64),
        kind: match span.kind {
            Kind::Client => "CLIENT",
            Kind::Server => "SERVER",
        },
        name: &span.name,
        timestamp: span.start_unix_us,
        // Zipkin reads 0 as "unknown".
        duration: span.duration_us.max(1),
        local_endpoint: ServiceName {
            service_name: &span.local_service,
        },
        remote_endpoint: span.remote.map(|r| Remote {
            ipv4: match r.ip() {
                std::net::IpAddr::V4(ip) => Some(ip),
                std::net::IpAddr::V6(_) => None,
            },
            ipv6: match r.ip() {
                std::net::IpAddr::V6(ip) => Some(ip),
                std::net::IpAddr::V4(_) => None,
            },
            port: r.port(),
        }),
        tags: Tags(span),
    }
}

fn otlp(spans: &[Span]) -> Value {
    let attribute = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    // A proxy has one workload: one resource.
    let service = spans.first().map(|s| &*s.local_service).unwrap_or("");
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let start_ns = u128::from(s.start_unix_us) * 1000;
            let end_ns = start_ns + u128::from(s.duration_us) * 1000;
            let mut v = json!({
                "traceId": format!("{:032x}", s.trace_id),
                "spanId": format!("{:016x}", s.id),
                "name": s.name,
                // SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3.
                "kind": match s.kind { Kind::Server => 2, Kind::Client => 3 },
                "startTimeUnixNano": start_ns.to_string(),
                "endTimeUnixNano": end_ns.to_string(),
                "attributes": s.tags.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
                // STATUS_CODE_UNSET = 0, STATUS_CODE_ERROR = 2.
                "status": {"code": if s.error { 2 } else { 0 }},
            });
            if let Some(parent) = s.parent_id {
                v["parentSpanId"] = Value::String(format!("{parent:016x}"));
            }
            v
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [attribute("service.name", service)]},
        "scopeSpans": [{"scope": {"name": "osm-proxy"}, "spans": spans}],
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(kind: Kind, parent: Option<u64>, error: bool) -> Span {
        Span {
            trace_id: 0xabc,
            id: 0x12,
            parent_id: parent,
            kind,
            name: "GET bookstore".into(),
            start_unix_us: 1_700_000_000_000_000,
            duration_us: 0,
            local_service: "bookbuyer.bookbuyer".into(),
            remote: Some("10.0.0.7:14001".parse().unwrap()),
            error,
            tags: vec![("http.status_code", "503".into())],
        }
    }

    #[test]
    fn the_endpoint_path_picks_the_format() {
        for (path, want) in [
            ("/api/v2/spans", Format::ZipkinV2),
            ("/v1/traces", Format::Otlp),
            ("/otlp/v1/traces/", Format::Otlp),
            ("/v1/tracesx", Format::ZipkinV2),
        ] {
            assert_eq!(Format::of_endpoint(path), want, "{path}");
        }
    }

    #[test]
    fn zipkin_spans_carry_ids_kind_endpoints_and_tags() {
        let body = body(
            Format::ZipkinV2,
            &[
                span(Kind::Client, Some(0x34), true),
                span(Kind::Server, None, false),
            ],
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        let client = &v[0];
        assert_eq!(client["traceId"], "00000000000000000000000000000abc");
        assert_eq!(client["id"], "0000000000000012");
        assert_eq!(client["parentId"], "0000000000000034");
        assert_eq!(client["kind"], "CLIENT");
        assert_eq!(client["duration"], 1);
        assert_eq!(client["timestamp"], 1_700_000_000_000_000u64);
        assert_eq!(
            client["localEndpoint"]["serviceName"],
            "bookbuyer.bookbuyer"
        );
        assert_eq!(client["remoteEndpoint"]["ipv4"], "10.0.0.7");
        assert_eq!(client["remoteEndpoint"]["port"], 14001);
        assert_eq!(client["tags"]["http.status_code"], "503");
        assert_eq!(client["tags"]["error"], "true");
        assert_eq!(v[1]["kind"], "SERVER");
        assert!(v[1].get("parentId").is_none());
        assert!(v[1]["tags"].get("error").is_none());
    }

    #[test]
    fn otlp_spans_follow_the_json_mapping() {
        let body = body(Format::Otlp, &[span(Kind::Client, Some(0x34), true)]);
        let v: Value = serde_json::from_slice(&body).unwrap();
        let rs = &v["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "bookbuyer.bookbuyer"}})
        );
        let s = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(s["spanId"], "0000000000000012");
        assert_eq!(s["parentSpanId"], "0000000000000034");
        assert_eq!(s["kind"], 3);
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(s["attributes"][0]["key"], "http.status_code");
    }
}

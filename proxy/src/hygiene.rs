//! What a request must look like before any rule reads it: one path (dot
//! segments resolved, slashes merged, as Envoy's `normalize_path` and
//! `merge_slashes` do), one authority, an upgrade only to WebSocket, and the
//! client identity header set by the proxy, never by the client. Pure
//! functions; the handlers apply them before authorization and routing, so
//! the rule and the application see the same request.

use std::borrow::Cow;

use http::{HeaderMap, HeaderValue, Request, Uri, header};

use crate::identity::SpiffeId;

/// The header carrying the verified identity of the client to the
/// application (Envoy's name): `URI=<spiffe id>`. A client's own value is
/// always dropped.
pub const CLIENT_CERT_HEADER: &str = "x-forwarded-client-cert";

/// Why a request is refused with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the path {0:?} encodes a '/' or '\\' (%2F, %5C)")]
    EncodedSeparator(String),
    #[error("the path {0:?} has an encoded dot segment (%2E)")]
    EncodedDotSegment(String),
    #[error("the path {0:?} does not start with '/'")]
    RelativePath(String),
    #[error("the path {0:?} has a '%' that is not followed by two hex digits")]
    BadEscape(String),
    #[error("the Host header {host:?} and the request's authority {authority:?} differ")]
    AuthorityMismatch { host: String, authority: String },
}

/// The path rules and the application see: percent-encoded unreserved
/// characters decoded and other escapes in upper case (RFC 3986 6.2.2), dot
/// segments resolved (5.2.4), empty segments merged; an encoded separator or
/// dot segment is refused (no rule could tell what the application will
/// make of it). Borrowed when already normal.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, Malformed> {
    if path == "*" {
        return Ok(Cow::Borrowed(path));
    }
    if !path.starts_with('/') {
        return Err(Malformed::RelativePath(path.into()));
    }
    // Every request comes through here: most paths are already normal (no
    // escape, no empty or dot segment) and cost no allocation.
    let escaped = path.contains('%');
    if !escaped && !path.contains("//") && !path.contains("/.") {
        return Ok(Cow::Borrowed(path));
    }
    if escaped {
        check_escapes(path)?;
    }
    let decoded = decode_unreserved(path);
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "" => trailing_slash = last && !out.is_empty(),
            "." => trailing_slash = last,
            ".." => {
                out.pop();
                trailing_slash = last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut normal = String::with_capacity(path.len());
    for s in &out {
        normal.push('/');
        normal.push_str(s);
    }
    if out.is_empty() || trailing_slash {
        normal.push('/');
    }
    Ok(if normal == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(normal)
    })
}

/// Escapes that no rule could judge: a stray '%' (it could pair with
/// decoded characters into a new escape, `%%32e` -> `%2e`, so one decoding
/// must be the only one), an encoded separator, an encoded dot segment.
fn check_escapes(path: &str) -> Result<(), Malformed> {
    let bytes = path.as_bytes();
    let stray = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if stray {
        return Err(Malformed::BadEscape(path.into()));
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(Malformed::EncodedSeparator(path.into()));
    }
    for segment in lower.split('/') {
        let spelled = segment.replace("%2e", ".");
        if spelled != segment && (spelled == "." || spelled == "..") {
            return Err(Malformed::EncodedDotSegment(path.into()));
        }
    }
    Ok(())
}

/// `%41` -> `A` for unreserved characters; other escapes in upper case.
fn decode_unreserved(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                out.push(char::from(b));
                i += 3;
            }
            Some(b) => {
                out.push_str(&format!("%{b:02X}"));
                i += 3;
            }
            None => {
                let c = path[i..].chars().next().unwrap_or('%');
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    Cow::Owned(out)
}

/// The one authority of a request: the request-target's and the Host
/// header must agree when both are present (case-insensitively).
pub fn check_authority<B>(req: &Request<B>) -> Result<(), Malformed> {
    let (Some(authority), Some(host)) = (req.uri().authority(), req.headers().get(header::HOST))
    else {
        return Ok(());
    };
    let host = String::from_utf8_lossy(host.as_bytes());
    if host.eq_ignore_ascii_case(authority.as_str()) {
        Ok(())
    } else {
        Err(Malformed::AuthorityMismatch {
            host: host.into_owned(),
            authority: authority.as_str().into(),
        })
    }
}

/// Puts the normalized path in the request (the query unchanged).
pub fn normalize_request_path<B>(req: &mut Request<B>) -> Result<(), Malformed> {
    let normal = match normalize_path(req.uri().path())? {
        Cow::Borrowed(_) => return Ok(()),
        Cow::Owned(normal) => normal,
    };
    let with_query = match req.uri().query() {
        Some(q) => format!("{normal}?{q}"),
        None => normal,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(
        with_query
            .parse()
            .map_err(|_| Malformed::RelativePath(with_query.clone()))?,
    );
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| Malformed::RelativePath(with_query))?;
    Ok(())
}

/// An upgrade to anything but WebSocket is ignored (RFC 9110 lets a server
/// do so): the request goes on as plain HTTP, never as a raw tunnel that no
/// rule could look into.
pub fn restrict_upgrade(headers: &mut HeaderMap) {
    let websocket = headers.get_all(header::UPGRADE).iter().all(|v| {
        v.to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
    });
    if !websocket {
        headers.remove(header::UPGRADE);
    }
}

/// The identity header for a verified peer (made once per connection).
pub fn client_cert_value(identity: &SpiffeId) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("URI={identity}")).ok()
}

/// Replaces whatever identity header the client sent with the verified
/// one (none for a plaintext ingress peer).
pub fn set_client_identity(headers: &mut HeaderMap, verified: Option<&HeaderValue>) {
    headers.remove(CLIENT_CERT_HEADER);
    if let Some(value) = verified {
        headers.insert(CLIENT_CERT_HEADER, value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_as_envoy_does() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("/", Ok("/")),
            ("/books", Ok("/books")),
            ("/books/", Ok("/books/")),
            ("/public/../admin", Ok("/admin")),
            ("/public/./admin", Ok("/public/admin")),
            ("/a/b/..", Ok("/a/")),
            ("/a/.", Ok("/a/")),
            ("/..", Ok("/")),
            ("/../../etc/passwd", Ok("/etc/passwd")),
            ("//a///b//", Ok("/a/b/")),
            ("/a//../b", Ok("/b")),
            ("/%41dmin", Ok("/Admin")),
            ("/a%2db%7e", Ok("/a-b~")),
            ("/caf%c3%a9", Ok("/caf%C3%A9")),
            ("/a%zz", Err("not followed by two hex digits")),
            ("/a/%%32e/", Err("not followed by two hex digits")),
            ("/a%2", Err("not followed by two hex digits")),
            ("/a%2ab", Ok("/a%2Ab")),
            ("/books..", Ok("/books..")),
            ("/...", Ok("/...")),
            ("*", Ok("*")),
            ("/public/%2e%2e/admin", Err("encoded dot segment")),
            ("/public/.%2E/admin", Err("encoded dot segment")),
            ("/public/%2e/admin", Err("encoded dot segment")),
            ("/public%2Fadmin", Err("encodes a '/'")),
            ("/public%5cadmin", Err("encodes a '/'")),
            ("admin", Err("does not start with '/'")),
        ];
        for (path, want) in cases {
            match (normalize_path(path), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{path}"),
                (Err(got), Err(want)) => assert!(got.to_string().contains(want), "{path}: {got}"),
                (got, want) => panic!("{path}: got {got:?}, want {want:?}"),
            }
        }
        assert!(matches!(normalize_path("/books/1"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn the_application_receives_the_path_the_rule_saw() {
        let mut req = Request::get("/public/../admin?x=1").body(()).unwrap();
        normalize_request_path(&mut req).unwrap();
        assert_eq!(req.uri().to_string(), "/admin?x=1");
        let mut req = Request::get("http://store:80/a//b").body(()).unwrap();
        normalize_request_path(&mut req).unwrap();
        assert_eq!(req.uri().to_string(), "http://store:80/a/b");
    }

    #[test]
    fn host_and_authority_must_agree() {
        let req = |uri: &str, host: Option<&str>| {
            let mut b = Request::get(uri);
            if let Some(h) = host {
                b = b.header("host", h);
            }
            b.body(()).unwrap()
        };
        assert!(check_authority(&req("/x", Some("store"))).is_ok());
        assert!(check_authority(&req("http://store:80/x", None)).is_ok());
        assert!(check_authority(&req("http://store:80/x", Some("STORE:80"))).is_ok());
        let err = check_authority(&req("http://admin:80/x", Some("store:80"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Host header \"store:80\" and the request's authority \"admin:80\" differ"
        );
    }

    #[test]
    fn only_websocket_upgrades_and_only_verified_identities_pass() {
        let mut h = HeaderMap::new();
        h.insert("upgrade", "websocket".parse().unwrap());
        restrict_upgrade(&mut h);
        assert_eq!(h["upgrade"], "websocket");
        for other in ["h2c", "tls/1.0", "websocket, h2c"] {
            let mut h = HeaderMap::new();
            h.insert("upgrade", other.parse().unwrap());
            restrict_upgrade(&mut h);
            assert!(h.get("upgrade").is_none(), "{other}");
        }

        let mut h = HeaderMap::new();
        h.insert(
            CLIENT_CERT_HEADER,
            "URI=spiffe://evil/ns/a/sa/admin".parse().unwrap(),
        );
        let id = SpiffeId::new("cluster.local", "shop", "buyer");
        set_client_identity(&mut h, client_cert_value(&id).as_ref());
        assert_eq!(
            h[CLIENT_CERT_HEADER],
            "URI=spiffe://cluster.local/ns/shop/sa/buyer"
        );
        assert_eq!(h.get_all(CLIENT_CERT_HEADER).iter().count(), 1);
        set_client_identity(&mut h, None);
        assert!(h.get(CLIENT_CERT_HEADER).is_none());
    }
}

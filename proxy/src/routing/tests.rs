use std::borrow::Cow;

use http::{HeaderMap, HeaderValue, Method};

use super::*;
use crate::test_support::snapshot;

/// The bookstore: a root service split 90/10 between v1 and v2 for
/// requests carrying `user-agent: beta` (A/B), on port 14001; and a second
/// service on port 80 of the same host name, split to v2 for everyone.
const BOOKSTORE: &str = r#"
endpoints:
- {key: bookstore/bookstore:14001, endpoints: []}
- {key: bookstore/bookstore-v1:14001, endpoints: []}
- {key: bookstore/bookstore-v2:14001, endpoints: []}
- {key: bookstore/bookstore:80, endpoints: []}
outbound:
- key: bookstore/bookstore:14001
  port: 14001
  hostnames: [bookstore, bookstore.bookstore, bookstore.bookstore.svc.cluster.local]
  vips: ["10.96.0.20", "fd00::20"]
  endpoints: bookstore/bookstore:14001
  split:
  - {endpoints: bookstore/bookstore-v1:14001, weight: 90}
  - {endpoints: bookstore/bookstore-v2:14001, weight: 10}
  splitMatches: [{name: beta, headers: {user-agent: beta}}]
- key: bookstore/bookstore:80
  port: 80
  hostnames: [bookstore]
  vips: ["10.96.0.20"]
  endpoints: bookstore/bookstore:80
  split:
  - {endpoints: bookstore/bookstore-v2:14001, weight: 1}
"#;

#[test]
fn authorities_normalize_to_host_and_port() {
    let cases: &[(&str, Option<(&str, u16)>)] = &[
        ("bookstore", Some(("bookstore", 80))),
        ("bookstore:14001", Some(("bookstore", 14001))),
        ("BookStore.BookStore.", Some(("bookstore.bookstore", 80))),
        ("bookstore.:8080", Some(("bookstore", 8080))),
        ("[::1]", Some(("[::1]", 80))),
        ("[::1]:9000", Some(("[::1]", 9000))),
        ("10.96.0.20:14001", Some(("10.96.0.20", 14001))),
        ("", None),
        (".", None),
        (":80", None),
        ("bookstore:http", None),
        ("bookstore:70000", None),
    ];
    for (authority, want) in cases {
        let got = normalize_authority(authority, 80);
        assert_eq!(
            got.as_ref().map(|(h, p)| (h.as_ref(), *p)),
            *want,
            "{authority:?}"
        );
    }
    // No allocation when the host is already lower case.
    assert!(matches!(
        normalize_authority("bookstore:1", 80),
        Some((Cow::Borrowed(_), 1))
    ));
}

#[test]
fn services_are_found_by_address_and_by_authority() {
    let s = snapshot(BOOKSTORE);
    let key = |svc: Option<&Arc<OutboundService>>| svc.map(|s| s.key.to_string());
    let root = Some("bookstore/bookstore:14001".to_string());
    let web = Some("bookstore/bookstore:80".to_string());
    let addr = |a: &str| a.parse::<SocketAddr>().expect("addr");
    let by_addr: &[(&str, &Option<String>)] = &[
        ("10.96.0.20:14001", &root),
        ("10.96.0.20:80", &web),
        ("[fd00::20]:14001", &root),
        // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6.
        ("[::ffff:10.96.0.20]:14001", &root),
        ("10.96.0.20:9999", &None),
        ("10.96.0.21:14001", &None),
    ];
    for (a, want) in by_addr {
        assert_eq!(&key(service_by_addr(&s, addr(a))), *want, "{a}");
    }
    let by_authority: &[(&str, &Option<String>)] = &[
        ("bookstore:14001", &root),
        ("bookstore", &web),
        ("BOOKSTORE.bookstore.svc.cluster.local.:14001", &root),
        ("bookstore.bookstore:80", &None),
        ("10.96.0.20:14001", &root),
        ("[fd00::20]:14001", &root),
        ("bookbuyer:14001", &None),
        ("", &None),
    ];
    for (authority, want) in by_authority {
        assert_eq!(
            &key(service_by_authority(&s, authority)),
            *want,
            "{authority:?}"
        );
    }
}

#[test]
fn a_b_matches_choose_between_the_split_and_the_root() {
    let s = snapshot(BOOKSTORE);
    let root = &s.outbound_by_addr[&"10.96.0.20:14001"
        .parse::<std::net::SocketAddr>()
        .expect("addr")];
    let mut beta = HeaderMap::new();
    beta.insert("user-agent", HeaderValue::from_static("beta"));
    let stable = HeaderMap::new();
    let request = |headers| HttpRequestView {
        method: &Method::GET,
        path: "/books",
        query: None,
        authority: Some("bookstore:14001"),
        headers,
    };
    let chosen = |request: Option<&HttpRequestView<'_>>, random| {
        choose_backend(root, request, random).key.to_string()
    };
    let cases: &[(&str, Option<HttpRequestView<'_>>, u64, &str)] = &[
        (
            "matching, low draw",
            Some(request(&beta)),
            0,
            "bookstore/bookstore-v1:14001",
        ),
        (
            "matching, draw 89",
            Some(request(&beta)),
            89,
            "bookstore/bookstore-v1:14001",
        ),
        (
            "matching, draw 90",
            Some(request(&beta)),
            90,
            "bookstore/bookstore-v2:14001",
        ),
        (
            "matching, draw 199",
            Some(request(&beta)),
            199,
            "bookstore/bookstore-v2:14001",
        ),
        (
            "not matching",
            Some(request(&stable)),
            95,
            "bookstore/bookstore:14001",
        ),
        (
            "a TCP connection cannot match: the root",
            None,
            95,
            "bookstore/bookstore:14001",
        ),
    ];
    for (case, req, random, want) in cases {
        assert_eq!(chosen(req.as_ref(), *random), *want, "{case}");
    }
    // A split without matches: requests and connections alike follow it.
    let web = &s.outbound_by_addr[&"10.96.0.20:80"
        .parse::<std::net::SocketAddr>()
        .expect("addr")];
    for request in [Some(&request(&stable)), None] {
        assert_eq!(
            &*choose_backend(web, request, 7).key,
            "bookstore/bookstore-v2:14001"
        );
    }
    // An empty set has no endpoint to choose.
    assert!(choose_endpoint(&web.endpoints).is_none());
}

#[test]
fn a_resend_goes_to_another_endpoint_even_the_busiest() {
    let s = snapshot(
        r#"
endpoints:
- key: shop/store:80
  endpoints:
  - {address: "127.0.0.1:1001"}
  - {address: "127.0.0.1:1002"}
- key: shop/one:80
  endpoints:
  - {address: "127.0.0.1:1003"}
outbound:
- {key: shop/store:80, port: 80, hostnames: [store], endpoints: shop/store:80}
- {key: shop/one:80, port: 81, hostnames: [one], endpoints: shop/one:80}
"#,
    );
    let set = &s.endpoint_sets["shop/store:80"];
    let (dead, live) = (&set.endpoints()[0], &set.endpoints()[1]);
    // The live endpoint is busy, the dead one idle (it fails fast): power
    // of two choices alone picks the dead one every time.
    let _busy: Vec<_> = (0..50).map(|_| live.load().start()).collect();
    for _ in 0..100 {
        let chosen = choose_other_endpoint(set, dead).expect("an endpoint");
        assert!(Arc::ptr_eq(chosen, live));
    }
    // A set of one: that one.
    let one = &s.endpoint_sets["shop/one:80"];
    let only = &one.endpoints()[0];
    assert!(Arc::ptr_eq(
        choose_other_endpoint(one, only).expect("it"),
        only
    ));
}

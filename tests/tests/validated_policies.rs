//! What validation accepts, the proxy builds: generated Retry policies,
//! UpstreamTrafficSettings (limits and outlier detection) and MeshConfig
//! sidecar TLS settings and Gateway API routes, from the values that are easy to get wrong; each
//! one the validating webhook would accept is compiled into a proxy's
//! config, which the proxy must build whole (the static-file mode, where
//! any bad field refuses the config).

#![allow(clippy::unwrap_used)]

use osm_api::{
    compile::{Index, MeshOptions, ProxyId, compile},
    load::load_str,
    validate::{rejects, validate},
};
use osm_proxy::{config::build_snapshot, upstream::EndpointRegistry};
use proptest::prelude::*;

const CLUSTER: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {openservicemesh.io/monitored-by: osm}}
---
apiVersion: v1
kind: Pod
metadata: {name: buyer-0, namespace: shop, labels: {app: buyer}}
spec: {serviceAccountName: buyer, containers: [{name: app, image: x}], initContainers: [{name: osm-proxy, image: p, restartPolicy: Always}]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: store-0, namespace: shop, labels: {app: store}}
spec: {serviceAccountName: store, containers: [{name: app, image: x}], initContainers: [{name: osm-proxy, image: p, restartPolicy: Always}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Service
metadata: {name: store, namespace: shop}
spec: {clusterIP: 10.96.0.1, selector: {app: store}, ports: [{name: http, port: 80}]}
";

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(options).prop_map(str::to_string)
}

/// Whether every document validates; if so, the buyer's compiled config
/// must build in the proxy.
fn check(extra: &str) -> Result<(), TestCaseError> {
    let loaded = load_str("generated.yaml", extra);
    if !loaded.errors.is_empty() {
        return Ok(()); // refused by the loader: never reaches a proxy
    }
    // The webhook refuses objects one by one: the accepted ones reach
    // the proxies.
    let accepted: Vec<_> = loaded
        .objects
        .into_iter()
        .filter(|o| !rejects(&validate(&o.object)))
        .collect();
    let mut index = Index::new(MeshOptions::default());
    for o in load_str("cluster.yaml", CLUSTER)
        .objects
        .into_iter()
        .chain(accepted)
    {
        index.apply(o.object);
    }
    let buyer = ProxyId {
        namespace: "shop".into(),
        pod: "buyer-0".into(),
    };
    let compiled = compile(&index, &buyer).unwrap();
    let built = build_snapshot(compiled.config, 1, &EndpointRegistry::default());
    prop_assert!(
        built.is_ok(),
        "validation accepted\n{extra}\nbut the proxy refused: {:?}",
        built.err()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn accepted_resilience_policies_build_in_the_proxy(
        conditions in proptest::collection::vec(
            pick(&["5xx", "gateway-error", "reset", "connect-failure", "refused-stream",
                   "retriable-4xx", "retriable-status-codes", "5XX", "sometimes", ""]),
            0..4),
        codes in proptest::collection::vec(
            proptest::sample::select(&[0u32, 99, 100, 409, 429, 503, 599, 600, 70000][..]), 0..3),
        per_try in pick(&["", "250ms", "1s", "0s", "soon", "-1s", "100000h"]),
        backoff in pick(&["25ms", "1ms", "0s", "x", "1h"]),
        consecutive in proptest::sample::select(&[0u32, 1, 5, 4_000_000_000][..]),
        percent in proptest::sample::select(&[0u32, 1, 50, 100, 101][..]),
        ejection in pick(&["30s", "0s", "1ms", "never", "100000h"]),
        max_requests in proptest::sample::select(&[0u32, 1, 4_294_967_295][..]),
        connect in pick(&["5s", "0s", "1ms", "x"]),
    ) {
        let codes = codes.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let yaml = format!("
apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata: {{name: osm-mesh-config, namespace: osm-system}}
spec: {{featureFlags: {{enableRetryPolicy: true}}, traffic: {{enablePermissiveTrafficPolicyMode: true}}}}
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: Retry
metadata: {{name: r, namespace: shop}}
spec:
  source: {{kind: ServiceAccount, name: buyer, namespace: shop}}
  destinations: [{{kind: Service, name: store, namespace: shop}}]
  retryPolicy: {{retryOn: '{}', retriableStatusCodes: [{codes}], perTryTimeout: '{per_try}', retryBackoffBaseInterval: '{backoff}'}}
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: UpstreamTrafficSetting
metadata: {{name: u, namespace: shop}}
spec:
  host: store.shop.svc.cluster.local
  connectionSettings: {{tcp: {{connectTimeout: '{connect}'}}, http: {{maxRequests: {max_requests}}}}}
  outlierDetection: {{consecutive5xx: {consecutive}, baseEjectionTime: '{ejection}', maxEjectionPercent: {percent}}}
", conditions.join(", "));
        check(&yaml)?;
    }

    #[test]
    fn accepted_tls_settings_build_in_the_proxy(
        min in pick(&["TLSv1_2", "TLSv1_3", "TLS_AUTO", "TLSv1_0", "TLSv1_1", "SSLv3"]),
        max in pick(&["TLSv1_2", "TLSv1_3", "TLS_AUTO", "TLSv1_1"]),
        suites in proptest::collection::vec(
            pick(&["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                   "TLS_AES_128_GCM_SHA256", "TLS13_AES_256_GCM_SHA384", "AES128-SHA", "RC4"]),
            0..3),
        curves in proptest::collection::vec(pick(&["X25519", "P-256", "secp384r1", "P-521"]), 0..2),
        mode in pick(&["Localhost", "PodIP", "Remote"]),
    ) {
        let list = |v: &[String]| v.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
        let yaml = format!("
apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata: {{name: osm-mesh-config, namespace: osm-system}}
spec:
  traffic: {{enablePermissiveTrafficPolicyMode: true}}
  sidecar: {{tlsMinProtocolVersion: {min}, tlsMaxProtocolVersion: {max}, cipherSuites: [{}], ecdhCurves: [{}], localProxyMode: {mode}}}
", list(&suites), list(&curves));
        check(&yaml)?;
    }

    #[test]
    fn accepted_gateway_routes_build_in_the_proxy(
        path_type in pick(&["Exact", "PathPrefix", "RegularExpression", "Glob"]),
        path in pick(&["/", "/a", "/a/", "a", "", "/(a", "/a.*", "/é"]),
        header in pick(&["x-a", "X-A", "bad name", "x:a", "é", ""]),
        value in pick(&["v", "", "a\\nb", "(", ".*", "é"]),
        value_type in pick(&["Exact", "RegularExpression"]),
        method in pick(&["GET", "get", "PATCH", "BREW"]),
        status in proptest::sample::select(&[301u32, 302, 303, 304, 307, 308, 0, 999][..]),
        scheme in pick(&["http", "https", "ftp", ""]),
        port in proptest::sample::select(&[0u32, 1, 8080, 65535, 65536][..]),
        host in pick(&["a.example", "a b", "", "a/b", "é.example"]),
        rewrite_type in pick(&["ReplaceFullPath", "ReplacePrefixMatch", "Other"]),
        request in pick(&["1s", "0s", "250ms", "1.5s", "100000s"]),
        weight in proptest::sample::select(&[0u32, 1, 1_000_000, 1_000_001][..]),
        retry_code in proptest::sample::select(&[200u32, 404, 500, 503, 599, 600][..]),
        attempts in proptest::sample::select(&[0u32, 1, 10, 11, 4_000_000_000][..]),
        backoff in pick(&["100ms", "0s", "1h", "soon"]),
    ) {
        let meta = |name: &str| format!("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
            metadata: {{name: {name}, namespace: shop}}\nspec:\n  parentRefs: [{{group: '', kind: Service, name: store, port: 80}}]\n");
        let yaml = format!("
apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata: {{name: osm-mesh-config, namespace: osm-system}}
spec: {{traffic: {{enablePermissiveTrafficPolicyMode: true}}}}
---
{}  rules:
  - matches: [{{path: {{type: {path_type}, value: '{path}'}}, method: {method},
                headers: [{{name: '{header}', value: '{value}', type: {value_type}}}],
                queryParams: [{{name: q, value: '{value}', type: {value_type}}}]}}]
    backendRefs: [{{name: store, port: 80, weight: {weight}}}]
    timeouts: {{request: '{request}'}}
    retry: {{codes: [{retry_code}], attempts: {attempts}, backoff: '{backoff}'}}
---
{}  rules:
  - filters:
    - {{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: '{header}', value: '{value}'}}], remove: ['{header}']}}}}
    - {{type: RequestRedirect, requestRedirect: {{scheme: '{scheme}', hostname: '{host}', port: {port}, statusCode: {status},
        path: {{type: {rewrite_type}, replaceFullPath: '{path}', replacePrefixMatch: '{path}'}}}}}}
---
{}  rules:
  - matches: [{{path: {{type: PathPrefix, value: /b}}}}]
    filters:
    - {{type: URLRewrite, urlRewrite: {{hostname: '{host}', path: {{type: {rewrite_type}, replaceFullPath: '{path}', replacePrefixMatch: '{path}'}}}}}}
    backendRefs: [{{name: store, port: 80, filters: [{{type: ResponseHeaderModifier, responseHeaderModifier: {{add: [{{name: '{header}', value: '{value}'}}]}}}}]}}]
", meta("matches"), meta("redirect"), meta("rewrite"));
        check(&yaml)?;
    }
}

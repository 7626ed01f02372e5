use super::*;
use crate::{
    compile::{
        MeshOptions,
        tests::{bookstore, index, pod, proxy, service},
    },
    load::load_str,
    protocol::{Delta, diff},
};

/// The keyed change the stream would send a proxy for this impact.
fn delta(impact: &Impact, id: &ProxyId) -> Delta {
    let change = &impact.changed[id];
    diff(&change.before, &change.after)
}

fn objects(yaml: &str) -> Vec<Object> {
    let out = load_str("change.yaml", yaml);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    out.objects.into_iter().map(|l| l.object).collect()
}

fn all_proxies() -> Vec<ProxyId> {
    [
        ("bookstore", "bookstore-v1-abc"),
        ("bookstore", "bookstore-v2-def"),
        ("bookbuyer", "bookbuyer-1"),
        ("bookthief", "bookthief-1"),
    ]
    .into_iter()
    .map(|(ns, p)| proxy(ns, p))
    .collect()
}

fn compiler(mesh: MeshOptions) -> Compiler {
    let mut c = Compiler::new(index(&bookstore(), mesh));
    for id in all_proxies() {
        c.add_proxy(id).expect("compiles");
    }
    c
}

/// The incremental view of every proxy equals a full recompile.
fn assert_matches_full_recompile(c: &Compiler, step: &str) {
    for id in c.proxies() {
        let full = compile(&c.index, id)
            .map(|x| resources(&x.config))
            .unwrap_or_default();
        assert_eq!(
            c.view(id).map(|v| &**v),
            Some(&full),
            "{step}: {id:?} is stale"
        );
    }
}

const THIEF_ALLOWED: &str = "apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: thief, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore-v2, namespace: bookstore}
  rules: [{kind: HTTPRouteGroup, name: bookstore-service-routes}]
  sources: [{kind: ServiceAccount, name: bookthief, namespace: bookthief}]
";

#[test]
fn a_new_traffic_target_touches_only_the_proxies_whose_view_changes() {
    let mut c = compiler(MeshOptions::default());
    let impact = c.apply(objects(THIEF_ALLOWED).remove(0));
    let touched: Vec<&ProxyId> = impact.changed.keys().collect();
    assert_eq!(
        touched,
        [
            &proxy("bookstore", "bookstore-v2-def"),
            &proxy("bookthief", "bookthief-1")
        ]
    );
    assert_eq!(
        impact.recompiled, 2,
        "bookbuyer and bookstore-v1 were not recompiled"
    );
    let v2 = &delta(&impact, &proxy("bookstore", "bookstore-v2-def"));
    assert_eq!(v2.upserts.len(), 1, "the inbound port");
    assert!(v2.removals.is_empty());
    let thief = &delta(&impact, &proxy("bookthief", "bookthief-1"));
    let keys: Vec<String> = thief
        .upserts
        .iter()
        .map(|r| match &r.kind {
            Some(v1::resource::Kind::Outbound(s)) => format!("outbound {}", s.key),
            Some(v1::resource::Kind::Endpoints(e)) => format!("endpoints {}", e.key),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        keys,
        [
            "outbound bookstore/bookstore-v2:14001",
            "outbound bookstore/bookstore:14001",
            "endpoints bookstore/bookstore-v2:14001",
            "endpoints bookstore/bookstore:14001"
        ]
    );
    assert_matches_full_recompile(&c, "after adding");

    let removed = c.delete(&ObjectKey {
        kind: "TrafficTarget",
        namespace: "bookstore".into(),
        name: "thief".into(),
    });
    let thief = &delta(&removed, &proxy("bookthief", "bookthief-1"));
    assert!(thief.upserts.is_empty());
    assert_eq!(thief.removals.len(), 4);
    assert_matches_full_recompile(&c, "after deleting");
}

#[test]
fn rejected_and_unchanged_objects_touch_nothing() {
    let mut c = compiler(MeshOptions::default());
    let bad = THIEF_ALLOWED.replace(
        "namespace: bookstore}\n  rules",
        "namespace: elsewhere}\n  rules",
    );
    let impact = c.apply(objects(&bad).remove(0));
    assert!(crate::validate::rejects(&impact.problems));
    assert!(impact.changed.is_empty() && impact.recompiled == 0);
    // Re-applying an object as it is recompiles its proxies but sends nothing.
    let same = c.apply(
        objects(&bookstore())
            .into_iter()
            .find(|o| o.kind() == "TrafficTarget")
            .expect("tt"),
    );
    assert!(same.changed.is_empty());
    assert!(same.recompiled > 0);
}

#[test]
fn every_kind_of_change_keeps_views_equal_to_a_full_recompile() {
    for permissive in [false, true] {
        let mut c = compiler(MeshOptions {
            permissive,
            ..MeshOptions::default()
        });
        let steps: Vec<(&str, String)> = vec![
            ("traffic target", THIEF_ALLOWED.to_string()),
            (
                "split",
                "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: s, namespace: bookstore}\n\
                 spec: {service: bookstore, backends: [{service: bookstore-v1, weight: 9}, {service: bookstore-v2, weight: 1}]}\n"
                    .into(),
            ),
            ("new pod behind the root", pod("bookstore", "bookstore-v1-xyz", "bookstore-v1", "10.1.0.9", "app: bookstore, version: v1")),
            ("new service", service("bookstore", "extra", "version: v2", "{port: 9000, targetPort: 8080}", "10.96.0.99")),
            (
                "route group change",
                "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: bookstore-service-routes, namespace: bookstore}\n\
                 spec: {matches: [{name: buy-a-book, pathRegex: '/buy', methods: [POST]}]}\n"
                    .into(),
            ),
            ("pod moves", pod("bookstore", "bookstore-v2-def", "bookstore-v2", "10.1.0.22", "app: bookstore, version: v2")),
            (
                "endpoint slice",
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: extra-1, namespace: bookstore, labels: {kubernetes.io/service-name: extra}}\n\
                 addressType: IPv4\nports: [{port: 8080}]\nendpoints: [{addresses: [10.1.0.2], targetRef: {kind: Pod, name: bookstore-v2-def}}]\n"
                    .into(),
            ),
            (
                "ingress",
                "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: IngressBackend\nmetadata: {name: i, namespace: bookstore}\n\
                 spec: {backends: [{name: bookstore-v2, port: {number: 8080, protocol: http}}], sources: [{kind: Service, name: bookbuyer, namespace: bookbuyer}]}\n"
                    .into(),
            ),
            ("source pod moves", pod("bookbuyer", "bookbuyer-1", "bookbuyer", "10.2.0.7", "app: bookbuyer")),
            (
                "mesh config with retries",
                "apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata: {name: osm-mesh-config, namespace: osm-system}\n\
                 spec: {traffic: {enablePermissiveTrafficPolicyMode: PERMISSIVE}, featureFlags: {enableRetryPolicy: true}}\n"
                    .replace("PERMISSIVE", if permissive { "true" } else { "false" }),
            ),
            (
                "retry",
                "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: Retry\nmetadata: {name: r, namespace: bookbuyer}\n\
                 spec: {source: {kind: ServiceAccount, name: bookbuyer}, destinations: [{kind: Service, name: bookstore, namespace: bookstore}], \
                 retryPolicy: {retryOn: 5xx, numRetries: 3}}\n"
                    .into(),
            ),
            (
                "upstream traffic setting",
                "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: UpstreamTrafficSetting\nmetadata: {name: u, namespace: bookstore}\n\
                 spec: {host: bookstore-v1.bookstore.svc.cluster.local, connectionSettings: {tcp: {maxConnections: 10}}, \
                 rateLimit: {local: {tcp: {connections: 5, unit: second}}}}\n"
                    .into(),
            ),
            (
                "egress",
                "apiVersion: policy.openservicemesh.io/v1alpha1\nkind: Egress\nmetadata: {name: e, namespace: bookthief}\n\
                 spec: {sources: [{kind: ServiceAccount, name: bookthief}], hosts: [example.com], ports: [{number: 443, protocol: https}], \
                 matches: [{kind: UpstreamTrafficSetting, name: ue}]}\n---\n\
                 apiVersion: policy.openservicemesh.io/v1alpha1\nkind: UpstreamTrafficSetting\nmetadata: {name: ue, namespace: bookthief}\n\
                 spec: {host: example.com, connectionSettings: {http: {maxRequests: 7}}}\n"
                    .into(),
            ),
        ];
        for (name, yaml) in &steps {
            for o in objects(yaml) {
                c.apply(o);
            }
            assert_matches_full_recompile(&c, &format!("apply {name} (permissive {permissive})"));
        }
        let deletions = [
            ("Pod", "bookstore", "bookstore-v1-xyz"),
            ("TrafficSplit", "bookstore", "s"),
            ("Service", "bookstore", "bookstore-v2"),
            ("TrafficTarget", "bookstore", "bookstore-v1"),
            ("UpstreamTrafficSetting", "bookthief", "ue"),
            ("Retry", "bookbuyer", "r"),
            ("UpstreamTrafficSetting", "bookstore", "u"),
            ("Egress", "bookthief", "e"),
            ("Pod", "bookbuyer", "bookbuyer-1"),
        ];
        for (kind, namespace, name) in deletions {
            c.delete(&ObjectKey {
                kind,
                namespace: namespace.into(),
                name: name.into(),
            });
            assert_matches_full_recompile(
                &c,
                &format!("delete {kind} {name} (permissive {permissive})"),
            );
        }
    }
}

#[test]
fn common_resources_reach_every_view_and_survive_recompiles() {
    let bundle = |pem: &str| {
        BTreeMap::from([(
            ResourceId::TrustBundle,
            v1::Resource {
                kind: Some(v1::resource::Kind::TrustBundle(v1::TrustBundle {
                    pem: pem.into(),
                })),
            },
        )])
    };
    let mut c = compiler(MeshOptions::default());
    c.set_common(bundle("OLD"));
    c.set_common(bundle("NEW"));
    // One proxy registered after the change.
    let late = proxy("bookbuyer", "bookbuyer-1");
    c.remove_proxy(&late);
    c.add_proxy(late).expect("compiles");
    for id in &all_proxies() {
        let view = c.view(id).expect("registered");
        assert_eq!(
            view.get(&ResourceId::TrustBundle).map(|r| &**r),
            bundle("NEW").get(&ResourceId::TrustBundle),
            "{id:?}"
        );
    }
    // A recompile keeps it, and a change's deltas do not carry it again.
    let impact = c.apply(objects(THIEF_ALLOWED).remove(0));
    for id in impact.changed.keys() {
        let delta = delta(&impact, id);
        assert!(
            !delta
                .upserts
                .iter()
                .any(|r| matches!(r.kind, Some(v1::resource::Kind::TrustBundle(_)))),
            "{id:?} was sent the unchanged trust bundle"
        );
        assert!(
            c.view(id)
                .expect("registered")
                .contains_key(&ResourceId::TrustBundle)
        );
    }
    assert!(!impact.changed.is_empty());
}

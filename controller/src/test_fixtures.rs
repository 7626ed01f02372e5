//! Manifests shared by the controller's tests.

/// A monitored namespace `shop` with injected pods store-0, buyer-0 and
/// thief-0 (each its own ServiceAccount) and a Service `store` on port 80.
pub(crate) const CLUSTER: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {openservicemesh.io/monitored-by: osm}}
---
apiVersion: v1
kind: Pod
metadata: {name: store-0, namespace: shop, labels: {app: store}}
spec: {serviceAccountName: store, containers: [{name: app, image: x}], initContainers: [{name: osm-proxy, image: p, restartPolicy: Always}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: buyer-0, namespace: shop, labels: {app: buyer}}
spec: {serviceAccountName: buyer, containers: [{name: app, image: x}], initContainers: [{name: osm-proxy, image: p, restartPolicy: Always}]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: thief-0, namespace: shop, labels: {app: thief}}
spec: {serviceAccountName: thief, containers: [{name: app, image: x}], initContainers: [{name: osm-proxy, image: p, restartPolicy: Always}]}
status: {podIP: 10.0.0.3}
---
apiVersion: v1
kind: Service
metadata: {name: store, namespace: shop}
spec: {clusterIP: 10.96.0.1, selector: {app: store}, ports: [{name: http, port: 80, targetPort: 8080}]}
";

/// Beside [`CLUSTER`]: plain-0 in `shop` without a sidecar, and an
/// unmonitored namespace `outside` with an injected pod.
pub(crate) const OUTSIDERS: &str = "
apiVersion: v1
kind: Pod
metadata: {name: plain-0, namespace: shop, labels: {app: plain}}
spec: {serviceAccountName: plain, containers: [{name: app, image: x}]}
status: {podIP: 10.0.0.4}
---
apiVersion: v1
kind: Namespace
metadata: {name: outside}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: outside, labels: {app: web}}
spec: {serviceAccountName: web, containers: [{name: app, image: x}], initContainers: [{name: osm-proxy, image: p, restartPolicy: Always}]}
status: {podIP: 10.0.1.1}
";

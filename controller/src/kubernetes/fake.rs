//! An in-memory Kubernetes API for tests: a kube `Client` over a tower
//! service that serves lists, streaming watches (with resource versions),
//! gets, creates, replaces, deletes, merge patches, server-side applies
//! and TokenReviews from a map of JSON objects, and records
//! every request it was sent. With CRDs installed ([`FakeApi::install_crd`])
//! their objects are pruned and relabelled between versions as the real
//! API server does ([`crds`]).

pub mod crds;

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

/// A collection: (API group, plural).
type Collection = (String, String);
/// An object's place: collection, namespace ("" when cluster-scoped), name.
type Place = (Collection, String, String);

/// What a watch stream receives.
#[derive(Clone, Debug)]
enum Broadcast {
    Event {
        collection: Collection,
        kind: &'static str,
        object: Value,
    },
    /// Every open watch fails with 410 Gone (the watcher must relist).
    Expire,
}

type TokenReviewFn = dyn Fn(&Value) -> Value + Send + Sync;

struct State {
    version: u64,
    objects: BTreeMap<Place, Value>,
    /// Events by version (collection, event type, object as stored), for
    /// watches that start from an older version.
    log: Vec<(u64, Collection, &'static str, Value)>,
    requests: Vec<String>,
    /// PATCH requests: (path?query, content type, body).
    patches: Vec<(String, String, Value)>,
    /// Lists of these collections fail once with 500.
    fail_list: Vec<Collection>,
    token_review: Option<Arc<TokenReviewFn>>,
    crds: BTreeMap<Collection, crds::Crd>,
}

/// The fake API server.
#[derive(Clone)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Broadcast>,
}

type Body = BoxBody<Bytes, Infallible>;

fn full(value: &Value) -> Body {
    http_body_util::Full::new(Bytes::from(value.to_string())).boxed()
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": reason, "message": message, "code": code.as_u16(),
    });
    let mut r = Response::new(full(&body));
    *r.status_mut() = code;
    r
}

fn collection_of(value: &Value) -> Collection {
    let api_version = value["apiVersion"].as_str().unwrap_or("");
    let group = api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("")
        .to_string();
    let kind = value["kind"].as_str().unwrap_or("").to_lowercase();
    let plural = match kind.as_str() {
        k if k.ends_with("ss") => format!("{k}es"),
        "egress" => "egresses".into(),
        "retry" => "retries".into(),
        "endpointslice" => "endpointslices".into(),
        k => format!("{k}s"),
    };
    (group, plural)
}

/// The parts of an API path.
#[derive(Debug, PartialEq)]
struct Target {
    collection: Collection,
    /// The API version in the path ("v1" for the core group).
    version: String,
    namespace: String,
    name: Option<String>,
    /// `labelSelector`, decoded.
    selector: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Equality (`k=v`, `k!=v`) and existence (`k`, `!k`) selectors, comma-separated.
fn selects(selector: Option<&str>, object: &Value) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let labels = &object["metadata"]["labels"];
    selector.split(',').all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once('=') {
            labels[k.trim().trim_end_matches('=')].as_str() == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            labels[k.trim()].is_null()
        } else {
            !labels[term.trim()].is_null()
        }
    })
}

fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => (String::new(), "v1".to_string(), rest),
        ["apis", group, version, rest @ ..] => (group.to_string(), version.to_string(), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] => (ns.to_string(), {
            let mut v = vec![*plural];
            v.extend_from_slice(rest);
            v
        }),
        other => (String::new(), other.to_vec()),
    };
    let plural = rest.first()?.to_string();
    Some(Target {
        collection: (group, plural),
        version,
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        selector: None,
    })
}

fn query(uri: &http::Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

impl Default for FakeApi {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApi {
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                version: 1,
                objects: BTreeMap::new(),
                log: Vec::new(),
                requests: Vec::new(),
                patches: Vec::new(),
                fail_list: Vec::new(),
                token_review: None,
                crds: BTreeMap::new(),
            })),
            events: broadcast::channel(1024).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A kube client talking to this fake.
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |req: Request<kube::client::Body>| {
            let fake = fake.clone();
            async move { Ok::<_, Infallible>(fake.handle(req).await) }
        });
        kube::Client::new(service, "default")
    }

    /// A stored object.
    pub fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let place = (
            (group.to_string(), plural.to_string()),
            namespace.to_string(),
            name.to_string(),
        );
        self.lock().objects.get(&place).cloned()
    }

    /// Every stored object of a collection, in name order.
    pub fn objects(&self, group: &str, plural: &str) -> Vec<Value> {
        self.lock()
            .objects
            .iter()
            .filter(|(((g, p), _, _), _)| g == group && p == plural)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Every PATCH so far: (path?query, content type, body).
    pub fn patches(&self) -> Vec<(String, String, Value)> {
        self.lock().patches.clone()
    }

    /// Every request so far, as "METHOD path?query".
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Answers TokenReviews with `review(spec)` as the status.
    pub fn on_token_review(&self, review: impl Fn(&Value) -> Value + Send + Sync + 'static) {
        self.lock().token_review = Some(Arc::new(review));
    }

    /// The next list of `(group, plural)` fails with 500.
    pub fn fail_next_list(&self, group: &str, plural: &str) {
        self.lock()
            .fail_list
            .push((group.to_string(), plural.to_string()));
    }

    /// Serves a CustomResourceDefinition's objects as the real API server
    /// does with `conversion: None`: pruned by the written version's and
    /// the storage version's schema on write, by the storage and the read
    /// version's schema on read.
    pub fn install_crd(&self, manifest: &Value) -> Result<(), String> {
        let crd = crds::Crd::from_manifest(manifest)?;
        self.lock()
            .crds
            .insert((crd.group.clone(), crd.plural.clone()), crd);
        Ok(())
    }

    /// An object as a read at `version` of `collection` returns it.
    fn served(&self, collection: &Collection, version: &str, stored: &Value) -> Value {
        match self.lock().crds.get(collection) {
            Some(crd) => crd.read(stored, version),
            None => stored.clone(),
        }
    }

    /// Creates or replaces an object (ADDED or MODIFIED to watchers),
    /// written at its own apiVersion.
    pub fn put(&self, mut object: Value) {
        let mut state = self.lock();
        if let Some(crd) = state.crds.get(&collection_of(&object)) {
            object = crd.write(object);
        }
        state.version += 1;
        let version = state.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let place = (
            collection_of(&object),
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            object["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
        let kind = if state.objects.contains_key(&place) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.objects.insert(place.clone(), object.clone());
        state
            .log
            .push((version, place.0.clone(), kind, object.clone()));
        let _ = self.events.send(Broadcast::Event {
            collection: place.0,
            kind,
            object,
        });
    }

    /// Deletes an object; `quietly` skips the DELETED event, as if it had
    /// happened while a watch was broken and the log compacted.
    pub fn delete(&self, group: &str, plural: &str, namespace: &str, name: &str, quietly: bool) {
        let mut state = self.lock();
        let place = (
            (group.to_string(), plural.to_string()),
            namespace.to_string(),
            name.to_string(),
        );
        let Some(object) = state.objects.remove(&place) else {
            return;
        };
        state.version += 1;
        if quietly {
            return;
        }
        let version = state.version;
        state
            .log
            .push((version, place.0.clone(), "DELETED", object.clone()));
        let _ = self.events.send(Broadcast::Event {
            collection: place.0,
            kind: "DELETED",
            object,
        });
    }

    /// Breaks every open watch with 410 Gone and forgets the event log, so
    /// watchers must list again.
    pub fn expire_watches(&self) {
        self.lock().log.clear();
        let _ = self.events.send(Broadcast::Expire);
    }

    async fn handle(&self, req: Request<kube::client::Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        self.lock().requests.push(format!(
            "{} {}{}",
            parts.method,
            path,
            parts
                .uri
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        ));
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let Some(target) = parse_path(&path) else {
            return status(StatusCode::NOT_FOUND, "NotFound", "no such path");
        };
        match (parts.method.as_str(), &target.name) {
            ("GET", None) if query(&parts.uri, "watch").as_deref() == Some("true") => {
                let from: u64 = query(&parts.uri, "resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                self.watch(target.collection, target.version, from)
            }
            ("GET", None) => {
                let mut target = target;
                target.selector = query(&parts.uri, "labelSelector").map(|s| percent_decode(&s));
                self.list(&target)
            }
            ("GET", Some(name)) => {
                let place = (target.collection.clone(), target.namespace, name.clone());
                let stored = self.lock().objects.get(&place).cloned();
                match stored {
                    Some(o) => {
                        Response::new(full(&self.served(&target.collection, &target.version, &o)))
                    }
                    None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
                }
            }
            ("POST", None) if target.collection.1 == "tokenreviews" => {
                let review: Value = serde_json::from_slice(&body).unwrap_or_default();
                let answer = self.lock().token_review.clone();
                let Some(answer) = answer else {
                    return status(StatusCode::FORBIDDEN, "Forbidden", "no reviewer");
                };
                let mut out = review.clone();
                out["status"] = answer(&review["spec"]);
                Response::new(full(&out))
            }
            ("POST", None) => {
                let mut object: Value = serde_json::from_slice(&body).unwrap_or_default();
                if object["metadata"]["namespace"].is_null() && !target.namespace.is_empty() {
                    object["metadata"]["namespace"] = json!(target.namespace);
                }
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let place = (target.collection.clone(), target.namespace, name);
                if self.lock().objects.contains_key(&place) {
                    return status(StatusCode::CONFLICT, "AlreadyExists", "already exists");
                }
                self.put(object);
                let stored = self.lock().objects.get(&place).cloned().unwrap_or_default();
                let mut r = Response::new(full(&self.served(
                    &target.collection,
                    &target.version,
                    &stored,
                )));
                *r.status_mut() = StatusCode::CREATED;
                r
            }
            ("PATCH", Some(name)) => {
                let content_type = parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let patch: Value = serde_json::from_slice(&body).unwrap_or_default();
                self.lock().patches.push((
                    format!(
                        "{path}{}",
                        parts
                            .uri
                            .query()
                            .map(|q| format!("?{q}"))
                            .unwrap_or_default()
                    ),
                    content_type.clone(),
                    patch.clone(),
                ));
                let place = (
                    target.collection.clone(),
                    target.namespace.clone(),
                    name.clone(),
                );
                // A patch applies to the object as read at its version.
                let stored = self.lock().objects.get(&place).cloned();
                let current = stored.map(|o| self.served(&target.collection, &target.version, &o));
                let object = match (content_type.as_str(), current) {
                    ("application/merge-patch+json", Some(mut current)) => {
                        json_patch::merge(&mut current, &patch);
                        current
                    }
                    // Server-side apply: creates, or merges the applied
                    // fields into what is there.
                    ("application/apply-patch+yaml", current) => {
                        let mut object = current.unwrap_or_else(|| json!({}));
                        json_patch::merge(&mut object, &patch);
                        if object["metadata"]["namespace"].is_null() && !target.namespace.is_empty()
                        {
                            object["metadata"]["namespace"] = json!(target.namespace);
                        }
                        object
                    }
                    ("application/merge-patch+json", None) => {
                        return status(StatusCode::NOT_FOUND, "NotFound", "not found");
                    }
                    _ => {
                        return status(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            "UnsupportedMediaType",
                            "the fake takes merge patches and server-side apply",
                        );
                    }
                };
                self.put(object);
                let stored = self.lock().objects.get(&place).cloned().unwrap_or_default();
                Response::new(full(&self.served(
                    &target.collection,
                    &target.version,
                    &stored,
                )))
            }
            ("DELETE", Some(name)) => {
                let place = (
                    target.collection.clone(),
                    target.namespace.clone(),
                    name.clone(),
                );
                let Some(object) = self.lock().objects.get(&place).cloned() else {
                    return status(StatusCode::NOT_FOUND, "NotFound", "not found");
                };
                self.delete(
                    &target.collection.0,
                    &target.collection.1,
                    &target.namespace,
                    name,
                    false,
                );
                Response::new(full(&object))
            }
            ("PUT", Some(name)) => {
                let mut object: Value = serde_json::from_slice(&body).unwrap_or_default();
                if object["metadata"]["namespace"].is_null() && !target.namespace.is_empty() {
                    object["metadata"]["namespace"] = json!(target.namespace);
                }
                let place = (target.collection.clone(), target.namespace, name.clone());
                let current = self.lock().objects.get(&place).cloned();
                let Some(current) = current else {
                    return status(StatusCode::NOT_FOUND, "NotFound", "not found");
                };
                let sent = &object["metadata"]["resourceVersion"];
                if !sent.is_null() && *sent != current["metadata"]["resourceVersion"] {
                    return status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        "the object has been modified",
                    );
                }
                self.put(object);
                let stored = self.lock().objects.get(&place).cloned().unwrap_or_default();
                Response::new(full(&self.served(
                    &target.collection,
                    &target.version,
                    &stored,
                )))
            }
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "not supported by the fake",
            ),
        }
    }

    fn list(&self, target: &Target) -> Response<Body> {
        let mut state = self.lock();
        if let Some(i) = state.fail_list.iter().position(|c| *c == target.collection) {
            state.fail_list.remove(i);
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "injected failure",
            );
        }
        let selector = target.selector.clone();
        let crd = state.crds.get(&target.collection).cloned();
        let items: Vec<Value> = state
            .objects
            .iter()
            .filter(|((c, ns, _), _)| {
                *c == target.collection && (target.namespace.is_empty() || *ns == target.namespace)
            })
            .filter(|(_, o)| selects(selector.as_deref(), o))
            .map(|(_, o)| match &crd {
                Some(crd) => crd.read(o, &target.version),
                None => o.clone(),
            })
            .collect();
        let list = json!({
            "apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": state.version.to_string()},
            "items": items,
        });
        Response::new(full(&list))
    }

    fn watch(&self, collection: Collection, api_version: String, from: u64) -> Response<Body> {
        let (tx, rx) = mpsc::unbounded_channel::<Result<Frame<Bytes>, Infallible>>();
        let (mut events, crd) = {
            // Subscribe and read the backlog under one lock: nothing is
            // missed or sent twice.
            let state = self.lock();
            let crd = state.crds.get(&collection).cloned();
            for (version, c, kind, object) in &state.log {
                if *version > from && *c == collection {
                    let line = event_line(kind, object, crd.as_ref(), &api_version);
                    let _ = tx.send(Ok(Frame::data(Bytes::from(line))));
                }
            }
            (self.events.subscribe(), crd)
        };
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                let line = match event {
                    Broadcast::Event {
                        collection: c,
                        kind,
                        object,
                    } if c == collection => event_line(kind, &object, crd.as_ref(), &api_version),
                    Broadcast::Event { .. } => continue,
                    Broadcast::Expire => {
                        let gone = json!({"type": "ERROR", "object": {
                            "kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "reason": "Expired", "code": 410,
                            "message": "too old resource version",
                        }});
                        let _ = tx.send(Ok(Frame::data(Bytes::from(format!("{gone}\n")))));
                        return;
                    }
                };
                if tx.send(Ok(Frame::data(Bytes::from(line)))).is_err() {
                    return;
                }
            }
        });
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        Response::new(StreamBody::new(stream).boxed())
    }
}

/// One line of a watch stream: the event with the object as read at
/// `version`.
fn event_line(kind: &str, stored: &Value, crd: Option<&crds::Crd>, version: &str) -> String {
    let object = match crd {
        Some(crd) => crd.read(stored, version),
        None => stored.clone(),
    };
    format!("{}\n", json!({"type": kind, "object": object}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_collections_namespaces_and_objects() {
        let t = |p| parse_path(p).unwrap();
        assert_eq!(
            t("/api/v1/pods"),
            Target {
                collection: ("".into(), "pods".into()),
                version: "v1".into(),
                namespace: "".into(),
                name: None,
                selector: None,
            }
        );
        assert_eq!(
            t("/api/v1/namespaces/shop/pods/buyer-0"),
            Target {
                collection: ("".into(), "pods".into()),
                version: "v1".into(),
                namespace: "shop".into(),
                name: Some("buyer-0".into()),
                selector: None,
            }
        );
        assert_eq!(t("/api/v1/namespaces").collection.1, "namespaces");
        let labelled = json!({"metadata": {"labels": {"openservicemesh.io/monitored-by": "osm"}}});
        assert!(selects(
            Some(&percent_decode("openservicemesh.io%2Fmonitored-by%3Dosm")),
            &labelled
        ));
        assert!(!selects(
            Some("openservicemesh.io/monitored-by=blue"),
            &labelled
        ));
        assert!(selects(Some("openservicemesh.io/monitored-by"), &labelled));
        assert!(!selects(
            Some("!openservicemesh.io/monitored-by"),
            &labelled
        ));
        assert!(selects(None, &labelled));
        assert_eq!(t("/api/v1/namespaces/shop").name.as_deref(), Some("shop"));
        assert_eq!(
            t("/apis/access.smi-spec.io/v1alpha3/traffictargets").collection,
            ("access.smi-spec.io".into(), "traffictargets".into())
        );
        assert_eq!(
            collection_of(
                &json!({"apiVersion": "policy.openservicemesh.io/v1alpha1", "kind": "Egress"})
            ),
            ("policy.openservicemesh.io".into(), "egresses".into())
        );
    }
}

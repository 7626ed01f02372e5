//! One request to a mesh service, as the client-side proxy sends it: each
//! try picks a backend and an endpoint, takes a place under the service's
//! circuit breaker, and is held to the per-try timeout; a failed try is
//! retried when the service's retry policy says so, the retry budget and
//! `maxRetries` allow it, and the request body could be kept to send
//! again; every try's result feeds outlier detection. The whole request is
//! held to the service's request timeout (504).
//!
//! A request whose response has started is never retried: a try ends at
//! the response headers, and the body streams to the client as it comes.
//! Without any policy, a try that left the request unprocessed (see
//! [`super::unprocessed`]) is sent once more, to another endpoint when
//! there is one: a bodyless request is always kept for that.

use std::{sync::Arc, time::Duration};

use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::{BodyExt, Either};
use hyper::body::{Body, Incoming};

use super::{try_once::try_once, unprocessed::unprocessed};
use crate::{
    config::{EndpointSet, Mirror, OutboundService, Retries},
    http_util::{Replay, UpstreamBody, is_upgrade},
    policy::HttpRequestView,
    refusal::{Layer, Refusal},
    resilience::{self, breaker::Breaker, retry::Tried},
    routing::{choose_backend, choose_endpoint, choose_other_endpoint},
    state::Shared,
    telemetry::{
        metrics::Metrics,
        tally::{Tally, counted},
    },
    upstream::{Affinity, EndpointHandle, ForwardError, ResponseBody},
};

/// The largest request body kept to be sent again.
pub const MAX_REPLAY_BYTES: u64 = 64 * 1024;

/// How a request ended.
pub enum Sent {
    Answered {
        response: Response<ResponseBody>,
        endpoint: Arc<EndpointHandle>,
    },
    Failed {
        error: ForwardError,
        endpoint: Arc<EndpointHandle>,
    },
    Refused(Refusal),
    /// The request timeout passed; the try in flight was cancelled.
    TimedOut {
        after: Duration,
        endpoint: Option<Arc<EndpointHandle>>,
    },
    /// The client's body could not be read to be kept.
    BadBody(String),
}

/// Whether a request can be sent more than once: not an upgrade, and a
/// body that is empty or of a known length no longer than
/// [`MAX_REPLAY_BYTES`] (a chunked or large body streams, tried once).
pub fn replayable(req: &Request<Incoming>) -> bool {
    if is_upgrade(req) {
        return false;
    }
    let body = req.body();
    body.is_end_stream()
        || body
            .size_hint()
            .exact()
            .is_some_and(|n| n <= MAX_REPLAY_BYTES)
}

/// What each try of a replayed request is made from.
struct Template {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Replay,
}

impl Template {
    fn request(&self) -> Request<UpstreamBody> {
        let mut req = Request::new(Either::Right(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }

    fn view(&self) -> HttpRequestView<'_> {
        HttpRequestView::from_parts(&self.method, &self.uri, &self.headers)
    }
}

/// The request, once: streamed, or kept for more tries.
enum Prepared {
    Once(Request<Incoming>),
    Replayed(Template),
}

async fn prepare(req: Request<Incoming>, retries: bool) -> Result<Prepared, String> {
    // A bodyless request costs nothing to keep (its headers are copied per
    // try), so it can be sent again when a try leaves it unprocessed.
    let bodyless = req.body().is_end_stream();
    if !(retries || bodyless) || !replayable(&req) {
        return Ok(Prepared::Once(req));
    }
    let (parts, body) = req.into_parts();
    let body = if bodyless {
        // Nothing to read: no poll of the body, no buffer.
        Replay::new(bytes::Bytes::new(), None)
    } else {
        let collected = body
            .collect()
            .await
            .map_err(|e| format!("reading the request body: {e}"))?;
        let trailers = collected.trailers().cloned();
        let bytes = collected.to_bytes();
        if let Some(tally) = parts.extensions.get::<Tally>() {
            tally.add(bytes.len() as u64);
        }
        Replay::new(bytes, trailers)
    };
    Ok(Prepared::Replayed(Template {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        body,
    }))
}

/// Feeds a try's result to the set's outlier detection, if it has any.
pub fn observe(
    metrics: &Metrics,
    set: &EndpointSet,
    endpoint: &EndpointHandle,
    tried: Option<Tried>,
) {
    let (Some(rule), Some(tried)) = (&set.outlier, tried) else {
        return;
    };
    let now = resilience::now();
    let may_eject = || {
        let endpoints = set.endpoints();
        let ejected = endpoints.iter().filter(|e| e.is_ejected(now)).count();
        ejected < rule.max_ejected(endpoints.len())
    };
    if endpoint
        .health()
        .record(rule, tried.is_failure(), now, may_eject)
    {
        metrics.record_ejection(&set.key);
        tracing::info!(
            endpoint = %endpoint.addr(),
            set = %set.key,
            ejections = endpoint.health().ejections(),
            "endpoint ejected by outlier detection"
        );
    }
}

/// Where a request's tries go and how long they may take.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A fixed backend (a route rule chose it); None: the service's own
    /// endpoints or its split, chosen for each try.
    pub backend: Option<Arc<EndpointSet>>,
    pub request_timeout: Option<Duration>,
    pub backend_request_timeout: Option<Duration>,
    /// A route rule's retries, in place of the service's.
    pub retry: Option<Arc<Retries>>,
    /// A route rule's mirrors (copies sent, answers dropped); None for
    /// a service's own requests (nothing allocated per request).
    pub mirrors: Option<Arc<[Mirror]>>,
}

impl Plan {
    /// The service's own backends and timeouts.
    pub fn of(service: &OutboundService) -> Self {
        Self {
            backend: None,
            request_timeout: service.request_timeout,
            backend_request_timeout: service.backend_request_timeout,
            retry: None,
            mirrors: None,
        }
    }
}

/// Sends a request to `service`, with its retries and the plan's timeouts;
/// on the downstream connection's own upstream connections when it keeps
/// them (`affinity`).
pub async fn send(
    shared: &Shared,
    affinity: Option<&Arc<Affinity>>,
    service: &OutboundService,
    plan: &Plan,
    req: Request<Incoming>,
) -> Sent {
    match plan.request_timeout {
        Some(limit) => {
            // The last endpoint tried, for metrics when time runs out.
            let mut last = None;
            match tokio::time::timeout(
                limit,
                tries(shared, affinity, service, plan, req, &mut last),
            )
            .await
            {
                Ok(sent) => sent,
                Err(_) => Sent::TimedOut {
                    after: limit,
                    endpoint: last,
                },
            }
        }
        None => tries(shared, affinity, service, plan, req, &mut None).await,
    }
}

async fn tries(
    shared: &Shared,
    affinity: Option<&Arc<Affinity>>,
    service: &OutboundService,
    plan: &Plan,
    req: Request<Incoming>,
    last: &mut Option<Arc<EndpointHandle>>,
) -> Sent {
    let retries = plan.retry.as_deref().or(service.retry.as_deref());
    if let Some(r) = retries {
        lock(&r.budget).deposit(resilience::now());
    }
    let mirrors = plan.mirrors.as_deref();
    let mut prepared = match prepare(req, retries.is_some() || mirrors.is_some()).await {
        Ok(p) => Some(p),
        Err(e) => return Sent::BadBody(e),
    };
    if let Some(mirrors) = mirrors {
        let template = match &prepared {
            Some(Prepared::Replayed(t)) => Some(t),
            _ => None,
        };
        super::mirror::send_copies(shared, mirrors, template.map(|t| || t.request()));
    }
    let mut retried = 0u32;
    let mut resent_unprocessed = false;
    // Held while a retry is in flight (`maxRetries`).
    let mut _retry_permit = None;
    loop {
        let random = fastrand::u64(..);
        let (request, set) = match prepared.take() {
            Some(Prepared::Once(req)) => {
                let set = match &plan.backend {
                    Some(set) => set.clone(),
                    None => {
                        choose_backend(service, Some(&HttpRequestView::of(&req)), random).clone()
                    }
                };
                (counted(req).map(Either::Left), set)
            }
            Some(Prepared::Replayed(template)) => {
                let set = match &plan.backend {
                    Some(set) => set.clone(),
                    None => choose_backend(service, Some(&template.view()), random).clone(),
                };
                let request = template.request();
                prepared = Some(Prepared::Replayed(template));
                (request, set)
            }
            None => unreachable!("a request streamed once is not tried again"),
        };
        let chosen = match (&*last, resent_unprocessed) {
            // Not the endpoint that just left the request unprocessed.
            (Some(previous), true) => choose_other_endpoint(&set, previous),
            _ => choose_endpoint(&set),
        };
        let Some(endpoint) = chosen.cloned() else {
            return Sent::Refused(Refusal::NoEndpoints {
                layer: Layer::Http,
                set: set.key.clone(),
            });
        };
        *last = Some(endpoint.clone());
        let _place = match Breaker::admit(set.breaker.as_deref()).await {
            Ok(place) => place,
            Err(overflow) => {
                return Sent::Refused(Refusal::Overflow {
                    layer: Layer::Http,
                    upstream: set.key.clone(),
                    overflow,
                });
            }
        };
        let per_connection = set
            .breaker
            .as_ref()
            .and_then(|b| b.limits.max_requests_per_connection);
        let per_try_timeout = retries
            .and_then(|r| r.rule.per_try_timeout)
            .or(plan.backend_request_timeout);
        let idempotent = super::unprocessed::idempotent(request.method());
        let result = try_once(
            &endpoint,
            affinity,
            request,
            per_try_timeout,
            per_connection,
        )
        .await;
        let tried = match &result {
            Ok(response) => Some(Tried::Answered(response.status())),
            Err(e) => e.tried(),
        };
        observe(&shared.metrics, &set, &endpoint, tried);
        // Another endpoint may take it; a retry policy that would retry it
        // anyway decides alone (no second retry on top of its own). The
        // cheap tests first: a request that succeeded pays for two.
        if !resent_unprocessed
            && set.endpoints().len() > 1
            && matches!(prepared, Some(Prepared::Replayed(_)))
            && unprocessed(
                result.as_ref().map(|r| (r.status(), r.headers())),
                endpoint.spec.identity.is_some(),
                idempotent,
            )
            && !retries.zip(tried).is_some_and(|(r, t)| r.rule.retries(t))
        {
            resent_unprocessed = true;
            shared
                .metrics
                .record_unprocessed_resent(&service.namespace, &service.name);
            continue;
        }
        let retry = match (retries, &prepared, tried) {
            (Some(r), Some(Prepared::Replayed(_)), Some(tried))
                if retried < r.rule.num_retries && r.rule.retries(tried) =>
            {
                Some(r)
            }
            _ => None,
        };
        let Some(retry) = retry else {
            return finished(result, endpoint);
        };
        // The budget and `maxRetries` may still say no.
        if !lock(&retry.budget).withdraw(resilience::now()) {
            shared.metrics.record_retry_skipped("budget");
            return finished(result, endpoint);
        }
        match set.breaker.as_ref().map(|b| b.admit_retry()) {
            Some(Err(overflow)) => {
                shared.metrics.record_retry_skipped(overflow.label());
                return finished(result, endpoint);
            }
            Some(Ok(permit)) => _retry_permit = Some(permit),
            None => {}
        }
        shared
            .metrics
            .record_retry(&service.namespace, &service.name);
        tokio::time::sleep(resilience::retry::backoff(
            retry.rule.backoff_base,
            retried,
            fastrand::f64(),
        ))
        .await;
        retried += 1;
    }
}

fn finished(
    result: Result<Response<ResponseBody>, ForwardError>,
    endpoint: Arc<EndpointHandle>,
) -> Sent {
    match result {
        Ok(response) => Sent::Answered { response, endpoint },
        Err(error) => Sent::Failed { error, endpoint },
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

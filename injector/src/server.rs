//! The admission server: HTTPS on 9090, `POST /mutate-pod-creation`.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use kube::core::admission::AdmissionResponse;

use crate::{admission, lookup::ClusterView, mutate::InjectorSettings};

pub const PATH: &str = "/mutate-pod-creation";
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What requests are answered with.
pub struct State {
    pub settings: InjectorSettings,
    pub cluster: Box<dyn ClusterView>,
    /// The file the mesh's trust bundle is read from at each request (a
    /// root rotation changes it); None: `settings.trust_bundle_pem` as
    /// given.
    pub trust_bundle: Option<crate::reload::Watched>,
}

impl State {
    /// The settings with the trust bundle as of now.
    fn settings_now(&self) -> std::borrow::Cow<'_, InjectorSettings> {
        match &self.trust_bundle {
            Some(file) => std::borrow::Cow::Owned(InjectorSettings {
                trust_bundle_pem: file.text(),
                ..self.settings.clone()
            }),
            None => std::borrow::Cow::Borrowed(&self.settings),
        }
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if (req.method(), req.uri().path()) == (&Method::GET, "/healthz") {
        return osm_serve::json_reply(StatusCode::OK, "\"ok\"".into());
    }
    let body = match osm_serve::admission::read_review(req, PATH, MAX_BODY).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let request = match admission::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            return osm_serve::admission::bad_request(&e);
        }
    };
    let looked_up = async {
        let namespace = state.cluster.namespace(&request.namespace).await?;
        let mesh = state.cluster.mesh_config().await?;
        Ok::<_, String>((namespace, mesh))
    }
    .await;
    let answer = match looked_up {
        Ok((namespace, mesh)) => {
            admission::respond(&request, &namespace, &mesh, &state.settings_now())
        }
        Err(e) => admission::deny(
            AdmissionResponse::from(&request.review),
            &format!("cannot decide on injection: {e}"),
        ),
    };
    osm_serve::admission::reply(answer)
}

/// Serves until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
    stop: CancellationToken,
) {
    let handler: osm_serve::Handler = Arc::new(move |req| {
        let state = state.clone();
        Box::pin(async move { handle(&state, req).await })
    });
    osm_serve::serve(listener, Some(tls), handler, stop).await;
}

/// A rustls server config from PEM files' contents (HTTP/2 and HTTP/1.1).
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    osm_serve::tls_from_pem(cert_pem, key_pem)
}

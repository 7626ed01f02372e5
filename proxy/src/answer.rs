//! What the proxy sends downstream: a proxied response's body, or an
//! answer it wrote itself saying why.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full};

/// A proxied body, or one the proxy wrote itself.
pub type ProxyBody = Either<crate::upstream::ResponseBody, Full<Bytes>>;

/// Header naming why the proxy answered a request itself.
pub const PROXY_ERROR_HEADER: &str = "osm-proxy-error";

/// A response written by the proxy: a one-line body saying why.
pub fn error_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(format!(
        "{message}\n"
    )))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(message) {
        headers.insert(PROXY_ERROR_HEADER, v);
    }
    response
}

//! The server name a TLS client asks for, read from its ClientHello
//! without terminating TLS (for Egress rules on HTTPS hosts).

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest ClientHello record read.
const MAX_RECORD: usize = 16 * 1024 + 5;

/// Reads until `prefix` holds the whole first TLS record, within `timeout`.
pub async fn read_first_record<S: AsyncRead + Unpin>(
    stream: &mut S,
    prefix: Bytes,
    timeout: std::time::Duration,
) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::from(&prefix[..]);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if buf.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([buf[3], buf[4]])) + 5;
            if buf.len() >= len.min(MAX_RECORD) {
                return Ok(buf.freeze());
            }
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => return Ok(buf.freeze()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// The SNI of a ClientHello, if the bytes hold one.
pub fn server_name(client_hello: &[u8]) -> Option<String> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut reader = client_hello;
    acceptor.read_tls(&mut reader).ok()?;
    match acceptor.accept() {
        Ok(Some(accepted)) => accepted.client_hello().server_name().map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sni_of_a_real_client_hello() {
        // A ClientHello as rustls writes it.
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("github.com").expect("name");
        let mut conn =
            rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).expect("hello");
        assert_eq!(server_name(&hello).as_deref(), Some("github.com"));
        assert_eq!(server_name(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(server_name(&hello[..10]), None, "a partial record");
    }
}

//! For tests of servers: whether a server let go of a client.

use std::time::Duration;

use tokio::io::AsyncReadExt as _;

/// Reads until the server closes the connection; false if it is still open
/// after `within`.
pub async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}

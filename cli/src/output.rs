//! Writing command output to standard output, where a reader that goes
//! away (`osm ... | head`) ends the output quietly instead of panicking.

use std::io::Write as _;

/// Writes `text` to standard output; a closed pipe is not an error.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

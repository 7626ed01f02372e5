//! Request headers from fuzz input: one `name: value` per line, up to 16,
//! invalid lines skipped. Shared by the targets that read headers.

pub fn from_lines(text: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for line in text.lines().take(16) {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.trim().as_bytes()),
                http::HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(k, v);
        }
    }
    headers
}

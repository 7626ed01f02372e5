//! Trace context in request headers: W3C `traceparent`/`tracestate`, B3
//! single (`b3`) and B3 multi (`x-b3-*`). Reading and writing only; what to
//! do with a context is decided in [`super`].
//!
//! A request may carry several formats; W3C wins, then B3 single, then B3
//! multi. When the proxy writes a context it writes every format the
//! request carried (so an application reading any of them sees the same
//! trace), and `traceparent` alone for a trace it starts.

use http::{HeaderMap, HeaderValue, header::HeaderName};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const B3: &str = "b3";
const B3_TRACE_ID: &str = "x-b3-traceid";
const B3_SPAN_ID: &str = "x-b3-spanid";
const B3_PARENT_SPAN_ID: &str = "x-b3-parentspanid";
const B3_SAMPLED: &str = "x-b3-sampled";
const B3_FLAGS: &str = "x-b3-flags";

/// The formats a request carried, to be written back the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Formats {
    pub w3c: bool,
    pub b3_single: bool,
    pub b3_multi: bool,
    /// The B3 trace id had 16 hex digits (64 bits): keep that width.
    pub b3_short_trace_id: bool,
}

impl Formats {
    /// What a trace the proxy starts carries.
    pub const NEW: Formats = Formats {
        w3c: true,
        b3_single: false,
        b3_multi: false,
        b3_short_trace_id: false,
    };
}

/// What a request says about its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Nothing usable (absent or malformed): the proxy decides and, when it
    /// writes, starts a new trace.
    None { formats: Formats },
    /// A sampling decision without ids (`b3: 0`, a lone `x-b3-sampled`).
    Decision { sampled: bool, formats: Formats },
    /// A span to continue. `sampled` is None when the sender left the
    /// decision to the receiver (B3 without a sampling state).
    Parent {
        trace_id: u128,
        span_id: u64,
        sampled: Option<bool>,
        formats: Formats,
    },
}

/// One span's context, as written into a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub trace_id: u128,
    pub span_id: u64,
    /// The span this one continues (B3 carries it).
    pub parent_id: Option<u64>,
    pub sampled: bool,
}

/// Reads the trace context of a request.
pub fn extract(headers: &HeaderMap) -> Incoming {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut formats = Formats {
        // Present at all: written back (valid or not), so an application
        // never sees a stale or broken context beside the proxy's.
        w3c: headers.contains_key(TRACEPARENT),
        b3_single: headers.contains_key(B3),
        b3_multi: headers.contains_key(B3_TRACE_ID) || headers.contains_key(B3_SAMPLED),
        b3_short_trace_id: false,
    };
    if let Some((trace_id, span_id, sampled)) = text(TRACEPARENT).and_then(parse_traceparent) {
        return Incoming::Parent {
            trace_id,
            span_id,
            sampled: Some(sampled),
            formats,
        };
    }
    if let Some(b3) = text(B3) {
        match parse_b3_single(b3) {
            Some(B3Single::Decision(sampled)) => return Incoming::Decision { sampled, formats },
            Some(B3Single::Context {
                trace_id,
                short,
                span_id,
                sampled,
            }) => {
                formats.b3_short_trace_id = short;
                return Incoming::Parent {
                    trace_id,
                    span_id,
                    sampled,
                    formats,
                };
            }
            None => {}
        }
    }
    let sampled = match (text(B3_FLAGS), text(B3_SAMPLED)) {
        (Some("1"), _) => Some(true),
        (_, Some(s)) => parse_sampled(s),
        _ => None,
    };
    let ids = text(B3_TRACE_ID)
        .and_then(parse_trace_id)
        .zip(text(B3_SPAN_ID).and_then(parse_span_id));
    match (ids, sampled) {
        (Some(((trace_id, short), span_id)), sampled) => {
            formats.b3_short_trace_id = short;
            Incoming::Parent {
                trace_id,
                span_id,
                sampled,
                formats,
            }
        }
        (None, Some(sampled)) if !headers.contains_key(B3_TRACE_ID) => {
            Incoming::Decision { sampled, formats }
        }
        _ => Incoming::None { formats },
    }
}

/// Writes `span` into the request in `formats`. A new trace (no parent)
/// drops a `tracestate` that belonged to no valid `traceparent`.
pub fn inject(headers: &mut HeaderMap, span: &Written, formats: Formats) {
    let trace_hex = format!("{:032x}", span.trace_id);
    let span_hex = format!("{:016x}", span.span_id);
    let b3_trace = if formats.b3_short_trace_id {
        &trace_hex[16..]
    } else {
        &trace_hex[..]
    };
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    if formats.w3c {
        let flags = if span.sampled { "01" } else { "00" };
        set(TRACEPARENT, format!("00-{trace_hex}-{span_hex}-{flags}"));
    }
    let sampled = if span.sampled { "1" } else { "0" };
    if formats.b3_single {
        let mut value = format!("{b3_trace}-{span_hex}-{sampled}");
        if let Some(parent) = span.parent_id {
            value.push_str(&format!("-{parent:016x}"));
        }
        set(B3, value);
    }
    if formats.b3_multi {
        set(B3_TRACE_ID, b3_trace.to_string());
        set(B3_SPAN_ID, span_hex.clone());
        set(B3_SAMPLED, sampled.to_string());
        match span.parent_id {
            Some(parent) => set(B3_PARENT_SPAN_ID, format!("{parent:016x}")),
            None => {
                headers.remove(B3_PARENT_SPAN_ID);
            }
        }
        // The debug flag is the sender's; the decision is now explicit.
        headers.remove(B3_FLAGS);
    }
    if span.parent_id.is_none() {
        headers.remove(TRACESTATE);
    }
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; a later
/// version may append fields after another `-` (W3C Trace Context, level 1,
/// "versioning of traceparent"). Version ff and all-zero ids are invalid.
fn parse_traceparent(value: &str) -> Option<(u128, u64, bool)> {
    let value = value.trim();
    let mut parts = value.splitn(5, '-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next();
    if version.len() != 2 || !is_lower_hex(version) || version == "ff" {
        return None;
    }
    if version == "00" && rest.is_some() {
        return None;
    }
    if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    if !(is_lower_hex(trace) && is_lower_hex(span) && is_lower_hex(flags)) {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    let span_id = u64::from_str_radix(span, 16).ok().filter(|s| *s != 0)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, span_id, flags & 1 == 1))
}

enum B3Single {
    Decision(bool),
    Context {
        trace_id: u128,
        short: bool,
        span_id: u64,
        sampled: Option<bool>,
    },
}

/// `{trace}-{span}[-{sampling}[-{parent}]]`, or a lone sampling state
/// (`0`, `1`, `d`) (openzipkin/b3-propagation).
fn parse_b3_single(value: &str) -> Option<B3Single> {
    let value = value.trim();
    if let Some(sampled) = parse_sampling_state(value) {
        return Some(B3Single::Decision(sampled));
    }
    let mut parts = value.split('-');
    let (trace_id, short) = parse_trace_id(parts.next()?)?;
    let span_id = parse_span_id(parts.next()?)?;
    let sampled = match parts.next() {
        None => None,
        Some(s) => Some(parse_sampling_state(s)?),
    };
    if let Some(parent) = parts.next() {
        parse_span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(B3Single::Context {
        trace_id,
        short,
        span_id,
        sampled,
    })
}

fn parse_sampling_state(s: &str) -> Option<bool> {
    match s {
        "1" | "d" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// `x-b3-sampled`: `1`/`0`, and `true`/`false` from old tracers.
fn parse_sampled(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// A B3 trace id: 16 or 32 hex digits, not all zero; `true` when short.
fn parse_trace_id(s: &str) -> Option<(u128, bool)> {
    let s = s.trim();
    if !(s.len() == 16 || s.len() == 32) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = u128::from_str_radix(s, 16).ok().filter(|t| *t != 0)?;
    Some((id, s.len() == 16))
}

fn parse_span_id(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok().filter(|s| *s != 0)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests;

//! `osm local test`'s table of expected connections (pure): the file's
//! format, whether what a request got meets what was expected, and the
//! report.
//!
//! ```yaml
//! - from: bookbuyer/bookbuyer          # NAMESPACE/DEPLOYMENT or NAMESPACE/pod/NAME
//!   to: http://bookstore.bookstore:14001/books-bought
//!   method: GET                        # default GET
//!   expect: allowed                    # allowed | denied | an HTTP status
//! ```

use serde::Deserialize;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub from: String,
    pub to: String,
    #[serde(default = "get")]
    pub method: String,
    pub expect: Expected,
}

fn get() -> String {
    "GET".into()
}

/// What the request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// An answer other than 403: the policy let the request through.
    Allowed,
    /// 403, or no answer at all (a refused connection): the policy did not.
    Denied,
    /// This status exactly.
    Status(u16),
}

impl<'de> Deserialize<'de> for Expected {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Number(u16),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "allowed" => Ok(Self::Allowed),
            Raw::Word(w) if w == "denied" => Ok(Self::Denied),
            Raw::Number(n) if (100..600).contains(&n) => Ok(Self::Status(n)),
            Raw::Word(w) => w
                .parse::<u16>()
                .ok()
                .filter(|n| (100..600).contains(n))
                .map(Self::Status)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{w:?} is not allowed, denied or an HTTP status"
                    ))
                }),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "{n} is not an HTTP status (100-599)"
            ))),
        }
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Allowed => f.write_str("allowed"),
            Self::Denied => f.write_str("denied"),
            Self::Status(s) => write!(f, "{s}"),
        }
    }
}

/// What a request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    /// No HTTP answer: why.
    NoAnswer(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(s) => write!(f, "{s}"),
            Self::NoAnswer(why) => write!(f, "no answer ({why})"),
        }
    }
}

pub fn meets(expected: Expected, got: &Outcome) -> bool {
    match (expected, got) {
        (Expected::Allowed, Outcome::Status(s)) => *s != 403,
        (Expected::Allowed, Outcome::NoAnswer(_)) => false,
        (Expected::Denied, Outcome::Status(s)) => *s == 403,
        (Expected::Denied, Outcome::NoAnswer(_)) => true,
        (Expected::Status(want), Outcome::Status(s)) => *s == want,
        (Expected::Status(_), Outcome::NoAnswer(_)) => false,
    }
}

/// The file's rows, or what is wrong and where.
pub fn parse(origin: &str, text: &str) -> Result<Vec<Expectation>, String> {
    let rows: Vec<Expectation> =
        serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text))
            .map_err(|e| format!("{origin}: {}: {}", e.path(), e.inner()))?;
    if rows.is_empty() {
        return Err(format!(
            "{origin}: no expectation (a YAML list of from, to, expect)"
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        if split_from(&row.from).is_none() {
            return Err(format!(
                "{origin}: [{i}].from: {:?} is not NAMESPACE/DEPLOYMENT or NAMESPACE/pod/NAME",
                row.from
            ));
        }
        if !(row.to.starts_with("http://") && row.to.len() > "http://".len()) {
            return Err(format!(
                "{origin}: [{i}].to: {:?} is not an http:// URL",
                row.to
            ));
        }
    }
    Ok(rows)
}

/// `from` as a namespace and what `osm local exec` takes (`deploy/NAME`
/// or a pod name).
pub fn split_from(from: &str) -> Option<(&str, String)> {
    let (namespace, rest) = from.split_once('/')?;
    if namespace.is_empty() || rest.is_empty() {
        return None;
    }
    let target = match rest.strip_prefix("pod/") {
        Some(pod) if !pod.is_empty() => pod.to_string(),
        Some(_) => return None,
        None if !rest.contains('/') => format!("deploy/{rest}"),
        None => return None,
    };
    Some((namespace, target))
}

/// What `httpget` printed and how it exited, as an outcome.
pub fn outcome_of(exit: i32, stdout: &str, stderr: &str) -> Outcome {
    match stdout.lines().next().and_then(|l| l.trim().parse().ok()) {
        Some(status) => Outcome::Status(status),
        None => Outcome::NoAnswer(match stderr.trim() {
            "" => format!("exit {exit}"),
            why => why.rsplit(": ").next().unwrap_or(why).to_string(),
        }),
    }
}

/// The report: one row per expectation, then the count.
pub fn report(rows: &[(Expectation, Outcome)]) -> (String, usize) {
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|(e, got)| {
            [
                e.from.clone(),
                e.to.clone(),
                e.method.clone(),
                e.expect.to_string(),
                got.to_string(),
                if meets(e.expect, got) { "pass" } else { "FAIL" }.into(),
            ]
        })
        .collect();
    let failed = table.iter().filter(|r| r[5] == "FAIL").count();
    let mut out = crate::table::render(
        &["FROM", "TO", "METHOD", "EXPECTED", "GOT", "RESULT"],
        &table,
    );
    out.push_str(&format!(
        "{} of {} expectations met{}\n",
        rows.len() - failed,
        rows.len(),
        if failed == 0 { "" } else { ": FAILED" }
    ));
    (out, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_meet_expectations_as_the_policy_decided() {
        let cases = [
            (Expected::Allowed, Outcome::Status(200), true),
            (Expected::Allowed, Outcome::Status(404), true),
            (Expected::Allowed, Outcome::Status(403), false),
            (Expected::Allowed, Outcome::NoAnswer("reset".into()), false),
            (Expected::Denied, Outcome::Status(403), true),
            (Expected::Denied, Outcome::NoAnswer("reset".into()), true),
            (Expected::Denied, Outcome::Status(200), false),
            (Expected::Status(404), Outcome::Status(404), true),
            (Expected::Status(404), Outcome::Status(200), false),
            (Expected::Status(503), Outcome::NoAnswer("x".into()), false),
        ];
        for (expected, got, want) in cases {
            assert_eq!(meets(expected, &got), want, "{expected} vs {got}");
        }
    }

    #[test]
    fn the_file_is_read_with_its_errors_named() {
        let rows = parse(
            "e.yaml",
            "- {from: shop/client, to: 'http://web.shop/', expect: allowed}\n- {from: shop/pod/thief-1, to: 'http://web.shop:8080/x', method: POST, expect: 403}\n- {from: shop/client, to: 'http://web.shop/', expect: '503'}\n",
        )
        .unwrap();
        assert_eq!(rows[0].method, "GET");
        assert_eq!(rows[1].expect, Expected::Status(403));
        assert_eq!(rows[2].expect, Expected::Status(503));
        assert_eq!(
            split_from(&rows[1].from),
            Some(("shop", "thief-1".to_string()))
        );
        assert_eq!(
            split_from("shop/client"),
            Some(("shop", "deploy/client".into()))
        );
        let bad = [
            (
                "- {from: shop/client, to: 'http://x/', expect: maybe}",
                "[0].expect",
            ),
            (
                "- {from: shop/client, to: 'http://x/', expect: 99}",
                "not an HTTP status",
            ),
            (
                "- {from: client, to: 'http://x/', expect: allowed}",
                "[0].from",
            ),
            ("- {from: shop/client, to: 'x', expect: allowed}", "[0].to"),
            (
                "- {from: a/b, to: 'http://x/', expect: allowed, port: 1}",
                "unknown field `port`",
            ),
            ("[]", "no expectation"),
        ];
        for (text, want) in bad {
            let e = parse("e.yaml", text).unwrap_err();
            assert!(e.starts_with("e.yaml: ") && e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn httpget_output_becomes_an_outcome_and_the_report_counts_failures() {
        assert_eq!(outcome_of(0, "200\nbody", ""), Outcome::Status(200));
        assert_eq!(outcome_of(22, "403\n", ""), Outcome::Status(403));
        assert_eq!(
            outcome_of(7, "", "httpget: http://x/: connection reset\n"),
            Outcome::NoAnswer("connection reset".into())
        );
        let row = |expect| Expectation {
            from: "shop/client".into(),
            to: "http://web.shop/".into(),
            method: "GET".into(),
            expect,
        };
        let (text, failed) = report(&[
            (row(Expected::Allowed), Outcome::Status(200)),
            (row(Expected::Denied), Outcome::Status(200)),
        ]);
        assert_eq!(failed, 1);
        assert!(text.starts_with("FROM"), "{text}");
        assert!(text.contains("denied     200   FAIL"), "{text}");
        assert!(
            text.ends_with("1 of 2 expectations met: FAILED\n"),
            "{text}"
        );
    }
}

//! Fills the `{{NAME}}` placeholders of the peer proxies' config files
//! (bench/pairs/*), refusing a template that names a value the harness does
//! not have, so a typo cannot start a proxy on a wrong port.

use anyhow::{Result, bail};

/// Replaces every `{{NAME}}` in `template` with its value in `values`.
pub fn fill(template: &str, values: &[(&str, String)]) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unclosed {{{{ in template");
        };
        let name = &after[..end];
        let Some((_, value)) = values.iter().find(|(n, _)| *n == name) else {
            bail!("template names {{{{{name}}}}}, which the harness does not set");
        };
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_replaced() {
        let values = [("DIR", "/tmp/b".to_string()), ("PORT", "8080".to_string())];
        assert_eq!(
            fill("pid {{DIR}}/x.pid; listen {{PORT}}; {{PORT}}", &values).unwrap(),
            "pid /tmp/b/x.pid; listen 8080; 8080"
        );
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_refused() {
        let values = [("DIR", "/tmp".to_string())];
        let err = fill("listen {{PROT}};", &values).unwrap_err().to_string();
        assert!(err.contains("{{PROT}}"), "{err}");
        assert!(fill("listen {{DIR", &values).is_err());
    }

    #[test]
    fn the_shipped_templates_name_only_known_values() {
        let values: Vec<(&str, String)> = ["DIR", "APP_PORT", "INBOUND_PORT", "OUTBOUND_PORT"]
            .into_iter()
            .map(|n| (n, "1".to_string()))
            .collect();
        for template in crate::pairs::paths::TEMPLATES {
            let filled = fill(template.1, &values).unwrap();
            assert!(!filled.contains("{{"), "{}", template.0);
        }
    }
}

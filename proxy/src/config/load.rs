//! Reading a static config file: YAML or JSON in the protocol's JSON mapping.

use osm_api::v1::ProxyConfig;
use serde::de::DeserializeOwned;

use super::{file_stream::StreamedResources, store::FileResources};

/// Why a config file could not be read; names the field where it can.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: field {field}: {message}")]
    Field {
        path: String,
        field: String,
        message: String,
    },
}

/// Whether `text` takes the JSON path (a YAML document that is a JSON
/// object reads the same either way).
fn is_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// A config file's resources, as the proxy keeps them: JSON is read one
/// resource at a time, never whole ([`super::file_stream`]); YAML is
/// parsed whole first. Accepts and refuses exactly what [`parse_config`]
/// does, with the same messages.
pub fn parse_file(path: &str, text: &str) -> Result<FileResources, LoadError> {
    if is_json(text) {
        return parse_json::<StreamedResources>(path, text).map(FileResources::from);
    }
    parse_config(path, text).map(FileResources::from_config)
}

/// Parses YAML (of which JSON is a subset) into the protocol's `ProxyConfig`.
/// Unknown fields are errors, so a typo never silently drops a rule.
pub fn parse_config(path: &str, text: &str) -> Result<ProxyConfig, LoadError> {
    if is_json(text) {
        return parse_json(path, text);
    }
    let value: serde_json::Value = if text.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| LoadError::Syntax {
            path: path.to_string(),
            message: e.to_string(),
        })?
    };
    if !value.is_object() {
        return Err(LoadError::Syntax {
            path: path.to_string(),
            message: "the document must be a mapping (ProxyConfig)".into(),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| LoadError::Field {
        path: path.to_string(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// JSON read straight into the config: no YAML event list and no value
/// tree in between (for 10,000 services they held 80 MB at the peak).
fn parse_json<T: DeserializeOwned>(path: &str, text: &str) -> Result<T, LoadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let config: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let message = e.inner().to_string();
        if field == "." || e.inner().is_syntax() || e.inner().is_eof() {
            LoadError::Syntax {
                path: path.to_string(),
                message,
            }
        } else {
            LoadError::Field {
                path: path.to_string(),
                field,
                message,
            }
        }
    })?;
    de.end().map_err(|e| LoadError::Syntax {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_give_the_same_config() {
        let yaml = "mesh:\n  permissive: true\noutbound:\n- key: ns/a:80\n  port: 80\n  protocol: PROTOCOL_HTTP1\n";
        let json = r#"{"mesh":{"permissive":true},"outbound":[{"key":"ns/a:80","port":80,"protocol":"PROTOCOL_HTTP1"}]}"#;
        let a = parse_config("a.yaml", yaml).expect("yaml parses");
        let b = parse_config("b.json", json).expect("json parses");
        assert_eq!(a, b);
        assert_eq!(a.outbound[0].port, 80);
        assert!(a.mesh.as_ref().expect("mesh").permissive);
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse_config("c.yaml", "outbound:\n- key: x\n  port: notanumber\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("c.yaml: field outbound[0].port: "), "{msg}");

        let err =
            parse_config("c.yaml", "inbound:\n- port: 80\n  protocl: PROTOCOL_TCP\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("c.yaml: field inbound[0]"), "{msg}");
        assert!(msg.contains("protocl"), "{msg}");
    }

    #[test]
    fn syntax_errors_are_reported() {
        let err = parse_config("d.yaml", "mesh: [unclosed").unwrap_err();
        assert!(err.to_string().starts_with("d.yaml: "), "{err}");
        let err = parse_config("d.yaml", "- a\n- b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.yaml: the document must be a mapping (ProxyConfig)"
        );
    }

    /// JSON takes its own path (straight into the config); it reports like
    /// the YAML one.
    #[test]
    fn json_errors_name_the_field_or_the_syntax() {
        let err = parse_config(
            "e.json",
            r#"{"outbound":[{"key":"x","port":"notanumber"}]}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("e.json: field outbound[0].port: "),
            "{err}"
        );
        let err = parse_config(
            "e.json",
            r#"{"inbound":[{"port":80,"protocl":"PROTOCOL_TCP"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("protocl"), "{err}");
        let err = parse_config("e.json", r#"{"mesh": {"permissive": true}"#).unwrap_err();
        assert!(matches!(err, LoadError::Syntax { .. }), "{err}");
        let err = parse_config("e.json", r#"{"mesh": {}} {"mesh": {}}"#).unwrap_err();
        assert!(
            matches!(err, LoadError::Syntax { .. }),
            "trailing data: {err}"
        );
    }
}

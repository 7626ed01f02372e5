//! Reading a static config file: YAML or JSON in the protocol's JSON mapping.

use osm_api::v1::ProxyConfig;

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

/// Parses YAML (of which JSON is a subset) into the protocol's `ProxyConfig`.
/// Unknown fields are errors, so a typo never silently drops a rule.
pub fn parse_config(path: &str, text: &str) -> Result<ProxyConfig, LoadError> {
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
}

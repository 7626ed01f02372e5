//! `--set key=value` as Helm reads it: dotted paths into the values, a
//! value typed as YAML would type it (`true`, `3`, `null`, strings), `{a,b}`
//! for a list; later settings win.

use serde_json::Value;

/// One `--set` value, typed.
fn typed(text: &str) -> Value {
    if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        if inner.trim().is_empty() {
            return Value::Array(Vec::new());
        }
        return Value::Array(inner.split(',').map(|item| typed(item.trim())).collect());
    }
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_string())),
    }
}

/// Applies `key=value` to `values`.
pub fn set(values: &mut Value, assignment: &str) -> Result<(), String> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| format!("--set {assignment:?}: expected key=value"))?;
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(format!("--set {assignment:?}: empty key in {path:?}"));
    }
    let mut node = values;
    for key in &keys[..keys.len() - 1] {
        if !node.is_object() {
            *node = Value::Object(Default::default());
        }
        node = node
            .as_object_mut()
            .expect("made an object above")
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    if !node.is_object() {
        *node = Value::Object(Default::default());
    }
    node.as_object_mut()
        .expect("made an object above")
        .insert(keys[keys.len() - 1].to_string(), typed(raw));
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_are_typed_and_nested_like_helm() {
        let mut v = json!({"osm": {"meshName": "osm", "controller": {"replicas": 1}}});
        set(&mut v, "osm.controller.replicas=3").unwrap();
        set(&mut v, "osm.enableEgress=false").unwrap();
        set(&mut v, "osm.image.tag=v1.2").unwrap();
        set(&mut v, "osm.inboundPortExclusionList={8080,9090}").unwrap();
        set(&mut v, "new.key=x").unwrap();
        assert_eq!(v["osm"]["controller"]["replicas"], 3);
        assert_eq!(v["osm"]["enableEgress"], false);
        assert_eq!(v["osm"]["image"]["tag"], "v1.2");
        assert_eq!(v["osm"]["inboundPortExclusionList"], json!([8080, 9090]));
        assert_eq!(v["osm"]["meshName"], "osm");
        assert_eq!(v["new"]["key"], "x");
        assert!(set(&mut v, "novalue").unwrap_err().contains("key=value"));
        assert!(set(&mut v, "a..b=1").unwrap_err().contains("empty key"));
    }
}

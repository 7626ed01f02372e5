//! Secrets as a pod sees them (pure): each key's bytes, from `data`
//! (base64 on the wire, decoded when read) and `stringData` (which wins,
//! as the API server merges it into `data`). Their values never go to a
//! log or an error message: only their names and keys do.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

/// A Secret's keys and their bytes.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.as_bytes().to_vec());
    }
    out
}

/// The Secret `name` of `namespace`.
pub fn find<'a>(secrets: &'a [Secret], namespace: &str, name: &str) -> Option<&'a Secret> {
    secrets.iter().find(|s| {
        s.metadata.name.as_deref() == Some(name)
            && s.metadata.namespace.as_deref() == Some(namespace)
    })
}

/// A key's value as an environment variable's (text).
pub fn env_value(secret: &Secret, key: &str) -> Option<Result<String, String>> {
    let bytes = secret_data(secret).remove(key)?;
    Some(String::from_utf8(bytes).map_err(|_| {
        format!(
            "key {key:?} of secret {:?} is not UTF-8 text",
            secret.metadata.name.as_deref().unwrap_or_default()
        )
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn string_data_wins_over_data_and_bytes_are_decoded() {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop"},
            "data": {"user": "YWRtaW4=", "password": "b2xk", "blob": "/w=="},
            "stringData": {"password": "s3cret"},
        }))
        .unwrap();
        let data = secret_data(&secret);
        assert_eq!(data["user"], b"admin");
        assert_eq!(data["password"], b"s3cret");
        assert_eq!(env_value(&secret, "user"), Some(Ok("admin".into())));
        let blob = env_value(&secret, "blob").unwrap().unwrap_err();
        assert!(
            blob.contains("\"blob\"") && !blob.contains('\u{ff}'),
            "{blob}"
        );
        assert!(env_value(&secret, "nope").is_none());
        let all = [secret];
        assert!(find(&all, "shop", "db").is_some() && find(&all, "other", "db").is_none());
    }
}

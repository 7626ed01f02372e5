//! What the API server's aggregator presents when it calls an aggregated
//! API: the CA of its front-proxy client certificate and the names that
//! certificate may carry, published in kube-system's ConfigMap
//! `extension-apiserver-authentication` (as every extension API server,
//! metrics-server among them, reads them).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

pub const CONFIG_MAP: &str = "extension-apiserver-authentication";
pub const NAMESPACE: &str = "kube-system";
const CA_KEY: &str = "requestheader-client-ca-file";
const NAMES_KEY: &str = "requestheader-allowed-names";

/// The front-proxy CA (PEM) and the allowed common names (empty: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontProxy {
    pub client_ca_pem: String,
    pub allowed_names: Vec<String>,
}

/// Reads the ConfigMap's data (pure); the error says what is missing and
/// what it means.
pub fn from_data(data: &std::collections::BTreeMap<String, String>) -> Result<FrontProxy, String> {
    let Some(ca) = data.get(CA_KEY).filter(|ca| !ca.trim().is_empty()) else {
        return Err(format!(
            "{NAMESPACE}/{CONFIG_MAP} has no {CA_KEY}: the API server runs without \
             --requestheader-client-ca-file, so it cannot call aggregated APIs"
        ));
    };
    let allowed_names = match data.get(NAMES_KEY).map(|n| n.trim()) {
        None | Some("") => Vec::new(),
        Some(names) => serde_json::from_str(names).map_err(|e| {
            format!("{NAMESPACE}/{CONFIG_MAP}: {NAMES_KEY} is not a JSON list: {e}")
        })?,
    };
    Ok(FrontProxy {
        client_ca_pem: ca.clone(),
        allowed_names,
    })
}

/// Reads the cluster's front-proxy settings.
pub async fn read(client: Client) -> Result<FrontProxy, String> {
    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let map = api
        .get_opt(CONFIG_MAP)
        .await
        .map_err(|e| format!("{NAMESPACE}/{CONFIG_MAP}: {e}"))?
        .ok_or_else(|| format!("{NAMESPACE}/{CONFIG_MAP} does not exist"))?;
    from_data(&map.data.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_config_map_gives_the_ca_and_the_names() {
        let data = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ok = from_data(&data(&[
            (CA_KEY, "PEM"),
            (NAMES_KEY, r#"["front-proxy-client"]"#),
        ]))
        .unwrap();
        assert_eq!(ok.allowed_names, ["front-proxy-client"]);
        assert!(
            from_data(&data(&[(CA_KEY, "PEM")]))
                .unwrap()
                .allowed_names
                .is_empty()
        );
        let none = from_data(&data(&[])).unwrap_err();
        assert!(none.contains("requestheader-client-ca-file"), "{none}");
        let bad = from_data(&data(&[(CA_KEY, "PEM"), (NAMES_KEY, "front")])).unwrap_err();
        assert!(bad.contains("not a JSON list"), "{bad}");
    }
}

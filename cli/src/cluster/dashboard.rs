//! `osm dashboard`: Grafana on localhost, through the API server's
//! port-forward.

use super::client;

/// `osm dashboard`: Grafana on localhost, through the API server.
#[derive(Debug, clap::Args)]
pub struct Dashboard {
    /// Where Grafana runs (a pod labelled app.kubernetes.io/name=grafana).
    #[arg(short, long, default_value = "osm-system")]
    pub namespace: String,
    /// The local port.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
}

/// The name of a Grafana pod in `namespace`.
pub async fn grafana_pod(client: &kube::Client, namespace: &str) -> Result<String, String> {
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=grafana"))
        .await
        .map_err(|e| format!("looking for Grafana in {namespace}: {e}"))?;
    list.items
        .iter()
        .find_map(|p| p.metadata.name.clone())
        .ok_or_else(|| {
            format!(
                "no Grafana pod (label app.kubernetes.io/name=grafana) in namespace {namespace}: install Grafana \
                 with its dashboard sidecar (the chart ships the dashboards as the ConfigMap osm-grafana-dashboards), \
                 or pass --namespace"
            )
        })
}

impl Dashboard {
    pub async fn run(&self) -> anyhow::Result<i32> {
        let client = client().await?;
        let pod = grafana_pod(&client, &self.namespace)
            .await
            .map_err(anyhow::Error::msg)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e} (try --port)", self.port)
            })?;
        println!(
            "Grafana ({}/{pod}) at http://127.0.0.1:{}/ — dashboards \"OSM: ...\"; Ctrl-C to stop",
            self.namespace, self.port
        );
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client, &self.namespace);
        loop {
            let (mut local, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                () = osm_serve::shutdown_signal() => return Ok(0),
            };
            let pods = pods.clone();
            let pod = pod.clone();
            tokio::spawn(async move {
                let forwarded = async {
                    let mut forwarder = pods
                        .portforward(&pod, &[3000])
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut remote = forwarder.take_stream(3000).ok_or("no stream")?;
                    tokio::io::copy_bidirectional(&mut local, &mut remote)
                        .await
                        .map_err(|e| e.to_string())?;
                    forwarder.abort();
                    Ok::<(), String>(())
                };
                if let Err(e) = forwarded.await {
                    eprintln!("port-forward to {pod}: {e}");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use osm_controller::kubernetes::fake::FakeApi;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn the_dashboard_finds_grafana_or_says_how_to_get_it() {
        let fake = FakeApi::new();
        let err = grafana_pod(&fake.client(), "osm-system").await.unwrap_err();
        assert!(
            err.contains("no Grafana pod") && err.contains("osm-grafana-dashboards"),
            "{err}"
        );
        fake.put(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "grafana-0", "namespace": "osm-system", "labels": {"app.kubernetes.io/name": "grafana"}}}));
        assert_eq!(
            grafana_pod(&fake.client(), "osm-system").await.unwrap(),
            "grafana-0"
        );
    }
}

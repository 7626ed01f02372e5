//! `osm version`: the CLI's, and each installed mesh's.

use super::{client, install};

/// `osm version`: the CLI's, and each installed mesh's.
#[derive(Debug, clap::Args)]
pub struct Version {
    /// Only the CLI's version (do not contact the cluster).
    #[arg(long)]
    pub client_only: bool,
}

impl Version {
    pub async fn run(&self) -> anyhow::Result<i32> {
        println!("osm {}", env!("CARGO_PKG_VERSION"));
        if self.client_only {
            return Ok(0);
        }
        let reached = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let client = client().await.map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            install::list(&client, &mut out).await?;
            Ok::<_, String>(String::from_utf8_lossy(&out).into_owned())
        })
        .await;
        match reached {
            Ok(Ok(meshes)) => crate::output::print(&meshes)?,
            Ok(Err(e)) => eprintln!("meshes: unknown ({e})"),
            Err(_) => eprintln!("meshes: unknown (the cluster did not answer within 5 s)"),
        }
        Ok(0)
    }
}

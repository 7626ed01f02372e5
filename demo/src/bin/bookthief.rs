//! bookthief: tries the same purchases; the SMI policy denies it unless a
//! TrafficTarget names it as a source.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    osm_demo::buyer::run("bookthief").await
}

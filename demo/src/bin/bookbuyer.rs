//! bookbuyer: buys books from the bookstore; the SMI policy allows it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    osm_demo::buyer::run("bookbuyer").await
}

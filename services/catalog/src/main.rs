#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_catalog::main().await
}

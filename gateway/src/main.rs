#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_gateway::main().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_shipping::main().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_inventory::main().await
}

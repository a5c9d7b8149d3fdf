#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_payment::main().await
}

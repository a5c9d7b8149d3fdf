#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_user::main().await
}

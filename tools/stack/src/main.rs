//! `stack up | down | reset | bootstrap`: see `shop_stack::cli`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shop_stack::cli::run(std::env::args().skip(1).collect()).await
}

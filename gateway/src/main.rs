// mimalloc rather than glibc's malloc: a service allocates and frees buffers on every
// request (hyper's, serde's), and glibc's malloc was a third of the gateway's CPU under
// load (bench/README.md); mimalloc cut the time per request by a third.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_gateway::main().await
}

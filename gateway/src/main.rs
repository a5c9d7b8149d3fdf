// mimalloc rather than glibc's malloc: a service allocates and frees buffers on every
// request (hyper's, serde's), and glibc's malloc was a third of the gateway's CPU under
// load (bench/README.md); mimalloc cut the time per request by a third.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The first serving core, and the background work (discovery, health checks,
/// reloads), on this thread's single-threaded runtime; the other cores start their own
/// (`shop_gateway::cores`).
fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(shop_gateway::main())
}

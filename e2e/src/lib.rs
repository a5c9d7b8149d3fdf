//! End-to-end checks of the whole shop, started as real processes by `shop-stack`.
//! The tests live in `tests/e2e/`; this library holds what they (and a load
//! generator) share.

use std::path::PathBuf;

use anyhow::Context as _;

/// The folder where `cargo build --workspace --bins` put the service binaries, found
/// from a test executable (`target/<profile>/deps/<test>`): two levels up. Fails,
/// saying what to run, when a service binary is missing there.
pub fn service_bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the test executable")?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test executable is not inside a cargo target folder")?
        .to_path_buf();
    let missing: Vec<&str> = shop_topology::SERVICES
        .iter()
        .map(|s| s.binary)
        .filter(|binary| !dir.join(binary).is_file())
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the service binaries {} are not in {}: run `cargo build --workspace --bins` \
             first (`make test` does)",
            missing.join(", "),
            dir.display()
        );
    }
    Ok(dir)
}

/// The repository's root, the services' working directory.
pub fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

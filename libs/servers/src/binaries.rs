//! Finding the server binaries, and saying exactly what to install when one is missing.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder holding `initdb` and `postgres`, from the first of: `$SHOP_PG_BINDIR`,
/// the `postgres` on `PATH` (symlinks followed), `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian keeps the server off `PATH`).
pub fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    let has_server =
        |dir: &Path| is_executable(&dir.join("postgres")) && is_executable(&dir.join("initdb"));
    if let Some(dir) = std::env::var_os("SHOP_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Ok(dir);
        }
        anyhow::bail!(
            "SHOP_PG_BINDIR={} holds no `postgres` and `initdb`",
            dir.display()
        );
    }
    let from_path = on_path("postgres")
        .and_then(|bin| bin.canonicalize().ok())
        .and_then(|bin| bin.parent().map(Path::to_path_buf));
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let candidates = from_path
        .into_iter()
        .chain(from_pg_config)
        .chain(debian_bin_dirs());
    for dir in candidates {
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    anyhow::bail!(
        "the PostgreSQL server (initdb, postgres) is not installed: looked on PATH, in \
         `pg_config --bindir` and in /usr/lib/postgresql/*/bin. Install the Debian package \
         `postgresql` (sudo apt-get install postgresql), or point SHOP_PG_BINDIR at the \
         folder holding initdb and postgres"
    )
}

/// `nats-server`, from `$SHOP_NATS_SERVER`, `PATH`, or `/usr/sbin` (where Debian puts
/// it, and which is not on a normal user's `PATH`).
pub fn nats_server_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("SHOP_NATS_SERVER") {
        let bin = PathBuf::from(bin);
        if is_executable(&bin) {
            return Ok(bin);
        }
        anyhow::bail!("SHOP_NATS_SERVER={} is not an executable", bin.display());
    }
    let fallbacks = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"].map(PathBuf::from);
    on_path("nats-server")
        .into_iter()
        .chain(fallbacks)
        .find(|bin| is_executable(bin))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "nats-server is not installed: looked on PATH, in /usr/sbin and /usr/local/bin. \
                 Install the Debian package `nats-server` (sudo apt-get install nats-server), \
                 or point SHOP_NATS_SERVER at the binary"
            )
        })
}

/// Every missing server binary, one message each (empty when all are there).
pub fn missing_servers() -> Vec<String> {
    [postgres_bin_dir().err(), nats_server_bin().err()]
        .into_iter()
        .flatten()
        .map(|e| e.to_string())
        .collect()
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn debian_bin_dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether a path names an executable file (used for the services' binaries too).
pub fn executable_exists(path: impl AsRef<OsStr>) -> bool {
    is_executable(Path::new(path.as_ref()))
}

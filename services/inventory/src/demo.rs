//! The demo stock (local runs only): the units each product of the demo catalog starts
//! with, read from the catalog's demo file when `SHOP_DEMO__FILE` names it (the file
//! `make up` gives both services; only `sku` and `stock` are read here).
//!
//! Idempotent, and safe whichever service starts first: each SKU gets its record if it
//! has none (the catalog's `product.created` may have made it already) and its demo
//! units once, recorded in the ledger as a receipt with the reason [`REASON`]. A SKU
//! whose ledger has that receipt is left alone, so a restart never adds stock again and
//! never undoes what was sold since. Each SKU is one transaction under its row lock, so
//! two replicas seeding at once receive it once.

use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;
use shop_events::Outbox;
use sqlx::PgPool;

use crate::sku::Sku;
use crate::stock::{self, Change, Kind};

/// The ledger reason of a demo receipt.
pub const REASON: &str = "demo stock";

#[derive(Debug, Deserialize)]
struct DemoFile {
    products: Vec<DemoStock>,
}

/// What the inventory reads of a demo product.
#[derive(Debug, Clone, Deserialize)]
pub struct DemoStock {
    pub sku: String,
    pub stock: i64,
}

/// Reads the file and seeds it; how many SKUs received their demo stock.
pub async fn seed_file(
    db: &PgPool,
    outbox: &Outbox,
    path: &Path,
    threshold: i64,
) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the demo catalog {}", path.display()))?;
    let file: DemoFile = serde_json::from_str(&text)
        .with_context(|| format!("parsing the demo catalog {}", path.display()))?;
    let seeded = seed(db, outbox, &file.products, threshold).await?;
    tracing::info!(file = %path.display(), skus = file.products.len(), seeded, "demo stock seeded");
    Ok(seeded)
}

/// Gives every SKU its demo units once; how many received them now.
pub async fn seed(
    db: &PgPool,
    outbox: &Outbox,
    products: &[DemoStock],
    threshold: i64,
) -> anyhow::Result<usize> {
    let mut seeded = 0;
    for product in products {
        let sku = Sku::parse(&product.sku)
            .map_err(|e| anyhow::anyhow!("demo SKU {:?}: {e}", product.sku))?;
        anyhow::ensure!(
            (0..=i64::from(crate::reservations::MAX_QUANTITY)).contains(&product.stock),
            "demo SKU {sku}: stock {} is out of range",
            product.stock
        );
        let mut tx = db.begin().await?;
        stock::create(&mut tx, outbox, &sku, threshold).await?;
        let locked = stock::lock(&mut tx, sku.as_str())
            .await?
            .with_context(|| format!("the stock record of {sku} vanished"))?;
        let due = product.stock > 0 && !stock::has_receipt(&mut *tx, &sku, REASON).await?;
        if due {
            let change = Change {
                kind: Kind::Receive,
                on_hand: product.stock,
                reserved: 0,
                reason: REASON,
                order_id: None,
            };
            stock::apply(&mut tx, outbox, &locked, change).await?;
            seeded += 1;
        }
        tx.commit().await?;
    }
    Ok(seeded)
}

//! The `availability` table: the catalog's projection of the inventory's stock, fed by
//! `inventory.stock.updated` (see `crate::consumers::availability`) and read by the
//! listing's `in_stock` filter, so a listing never calls the inventory.

use sqlx::PgExecutor;

/// Records `available` units of `sku` at `revision`, unless a newer (or the same)
/// revision is recorded already: events of one SKU may arrive out of order. Whether
/// it changed anything.
pub async fn record(
    db: impl PgExecutor<'_>,
    sku: &str,
    available: i64,
    revision: i64,
) -> Result<bool, sqlx::Error> {
    let applied = sqlx::query(
        "INSERT INTO availability (sku, available, revision) VALUES ($1, $2, $3)
         ON CONFLICT (sku) DO UPDATE
         SET available = EXCLUDED.available, revision = EXCLUDED.revision, updated_at = now()
         WHERE availability.revision < EXCLUDED.revision",
    )
    .bind(sku)
    .bind(available.max(0))
    .bind(revision)
    .execute(db)
    .await?;
    Ok(applied.rows_affected() == 1)
}

//! The demo catalog: a JSON file of categories and products (with the initial stock
//! the inventory gives each SKU) loaded at start-up when `SHOP_DEMO__FILE` names it.
//! Idempotent: categories and SKUs that exist are left as they are, and only the
//! products it creates publish `catalog.product.created` (in the same transaction),
//! so a restart publishes nothing twice.

use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;
use shop_events::Outbox;
use sqlx::PgPool;

use crate::products::{self, Money, ProductFields};
use crate::requests::{product_errors, slug_error};
use crate::{categories, events};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoCatalog {
    pub categories: Vec<DemoCategory>,
    pub products: Vec<DemoProduct>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoCategory {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoProduct {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub category: String,
    pub image_url: Option<String>,
    /// The units the inventory starts with (read by the inventory's seed, not here).
    pub stock: i64,
}

impl DemoProduct {
    fn fields(&self) -> ProductFields<'_> {
        ProductFields {
            sku: &self.sku,
            name: &self.name,
            description: &self.description,
            price: &self.price,
            category: &self.category,
            image_url: self.image_url.as_deref(),
        }
    }
}

/// What a seed created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    pub categories: usize,
    pub products: usize,
}

/// Reads, checks and loads the file.
pub async fn seed_file(db: &PgPool, outbox: &Outbox, path: &Path) -> anyhow::Result<Seeded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the demo catalog {}", path.display()))?;
    let catalog: DemoCatalog = serde_json::from_str(&text)
        .with_context(|| format!("parsing the demo catalog {}", path.display()))?;
    let seeded = seed(db, outbox, &catalog).await?;
    tracing::info!(
        file = %path.display(),
        categories = seeded.categories,
        products = seeded.products,
        "demo catalog seeded"
    );
    Ok(seeded)
}

/// Loads the catalog in one transaction: all of it or none.
pub async fn seed(db: &PgPool, outbox: &Outbox, catalog: &DemoCatalog) -> anyhow::Result<Seeded> {
    check(catalog)?;
    let mut tx = db.begin().await?;
    let mut seeded = Seeded {
        categories: 0,
        products: 0,
    };
    for category in &catalog.categories {
        if categories::insert_if_absent(&mut *tx, &category.slug, &category.name).await? {
            seeded.categories += 1;
        }
    }
    for product in &catalog.products {
        let created = products::insert_if_absent(&mut *tx, &product.fields())
            .await
            .map_err(|e| anyhow::anyhow!("demo product {}: {e}", product.sku))?;
        if let Some(created) = created {
            outbox.enqueue(&mut tx, events::created(&created)).await?;
            seeded.products += 1;
        }
    }
    tx.commit().await?;
    Ok(seeded)
}

/// The file obeys the API's rules (a bad demo file fails the start, loudly).
fn check(catalog: &DemoCatalog) -> anyhow::Result<()> {
    for category in &catalog.categories {
        if let Some(error) = slug_error("slug", &category.slug) {
            anyhow::bail!("demo category {:?}: {}", category.slug, error.message);
        }
    }
    for product in &catalog.products {
        let errors = product_errors(&product.fields());
        if let Some(error) = errors.first() {
            anyhow::bail!(
                "demo product {:?}: {} {}",
                product.sku,
                error.field,
                error.message
            );
        }
        if product.stock < 0 {
            anyhow::bail!("demo product {:?}: negative stock", product.sku);
        }
    }
    Ok(())
}

/// The demo file every test and `make up` use, as the type that reads it.
pub fn bundled() -> anyhow::Result<DemoCatalog> {
    Ok(serde_json::from_str(include_str!("../demo/products.json"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_demo_catalog_is_valid_and_large_enough() {
        let catalog = bundled().unwrap();
        check(&catalog).unwrap();
        assert!(catalog.categories.len() >= 5);
        assert!(catalog.products.len() >= 40);
        let mut skus: Vec<_> = catalog.products.iter().map(|p| &p.sku).collect();
        skus.sort();
        skus.dedup();
        assert_eq!(skus.len(), catalog.products.len(), "SKUs are unique");
        for product in &catalog.products {
            assert!(
                catalog
                    .categories
                    .iter()
                    .any(|c| c.slug == product.category),
                "{} has a known category",
                product.sku
            );
        }
    }
}

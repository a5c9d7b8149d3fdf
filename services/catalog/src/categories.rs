//! The `categories` table: a slug (the key products refer to) and a display name.

use serde::Serialize;
use shop_db::OnConstraint as _;
use sqlx::PgExecutor;
use utoipa::ToSchema;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({"slug": "kitchen", "name": "Kitchen"}))]
pub struct Category {
    pub slug: String,
    pub name: String,
}

/// Every category, by slug.
pub async fn all(db: impl PgExecutor<'_>) -> Result<Vec<Category>> {
    let categories = sqlx::query_as("SELECT slug, name FROM categories ORDER BY slug")
        .fetch_all(db)
        .await?;
    Ok(categories)
}

/// Creates a category; [`Error::CategoryTaken`] if the slug exists.
pub async fn insert(db: impl PgExecutor<'_>, slug: &str, name: &str) -> Result<Category> {
    sqlx::query_as("INSERT INTO categories (slug, name) VALUES ($1, $2) RETURNING slug, name")
        .bind(slug)
        .bind(name)
        .fetch_one(db)
        .await
        .on_constraint("categories_pkey", || Error::CategoryTaken)
}

/// Creates the category unless the slug exists; whether it did.
pub async fn insert_if_absent(db: impl PgExecutor<'_>, slug: &str, name: &str) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO categories (slug, name) VALUES ($1, $2) ON CONFLICT (slug) DO NOTHING",
    )
    .bind(slug)
    .bind(name)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

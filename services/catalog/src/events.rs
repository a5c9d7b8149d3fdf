//! What the catalog publishes (contracts in `shop_events::contracts::catalog`), made
//! from the product as it was committed.

use shop_events::contracts::catalog::{ProductCreated, ProductDeactivated, ProductUpdated};

use crate::products::Product;

pub fn created(p: &Product) -> ProductCreated {
    ProductCreated {
        product_id: p.id.to_string(),
        sku: p.sku.clone(),
        name: p.name.clone(),
        category: p.category.clone(),
        price: p.price.clone().into(),
        active: p.active,
    }
}

pub fn updated(p: &Product) -> ProductUpdated {
    ProductUpdated {
        product_id: p.id.to_string(),
        sku: p.sku.clone(),
        name: p.name.clone(),
        category: p.category.clone(),
        price: p.price.clone().into(),
        active: p.active,
        version: p.version,
    }
}

pub fn deactivated(p: &Product) -> ProductDeactivated {
    ProductDeactivated {
        product_id: p.id.to_string(),
        sku: p.sku.clone(),
        version: p.version,
    }
}

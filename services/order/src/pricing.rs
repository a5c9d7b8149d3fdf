//! Pricing a placement with the catalog's answer: each line gets the product's current
//! SKU, name and price, kept with the order as sold. A line whose product is unknown
//! or no longer sold, or an order whose products are priced in more than one
//! currency, is refused with the field at fault.

use shop_http::FieldError;

use crate::catalog::Lookup;
use crate::orders::{Line, Money};
use crate::requests::PlaceOrder;

/// The lines as they will be sold and their total, or why the order cannot be.
pub fn price(request: &PlaceOrder, lookup: &Lookup) -> Result<(Vec<Line>, Money), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut lines = Vec::with_capacity(request.items.len());
    for (i, item) in request.items.iter().enumerate() {
        let field = format!("items[{i}].product_id");
        match lookup.items.iter().find(|p| p.id == item.product_id) {
            None => errors.push(FieldError::new(field, "unknown", "no such product")),
            Some(product) if !product.active => {
                errors.push(FieldError::new(field, "inactive", "is no longer sold"))
            }
            Some(product) => {
                let unit = Money {
                    amount: product.price.amount,
                    currency: product.price.currency.clone(),
                };
                let line_total = Money {
                    amount: unit.amount.saturating_mul(i64::from(item.quantity)),
                    currency: unit.currency.clone(),
                };
                lines.push(Line {
                    product_id: product.id.clone(),
                    sku: product.sku.clone(),
                    name: product.name.clone(),
                    quantity: item.quantity,
                    unit_price: unit,
                    line_total,
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut currencies: Vec<&str> = lines
        .iter()
        .map(|l| l.unit_price.currency.as_str())
        .collect();
    currencies.sort_unstable();
    currencies.dedup();
    let [currency] = currencies[..] else {
        return Err(vec![FieldError::new(
            "items",
            "mixed_currencies",
            format!(
                "the products are priced in {}: one order is paid in one currency",
                currencies.join(" and ")
            ),
        )]);
    };
    // At most 50 lines of 100 units at 10^9 minor units: far inside an i64.
    let amount = lines.iter().map(|l| l.line_total.amount).sum();
    let total = Money {
        amount,
        currency: currency.to_owned(),
    };
    Ok((lines, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CatalogProduct, Price};
    use crate::orders::Address;
    use crate::requests::{Item, Payment};

    fn product(n: u8, amount: i64, currency: &str, active: bool) -> CatalogProduct {
        CatalogProduct {
            id: format!("prod_{n:032x}"),
            sku: format!("SKU-{n}"),
            name: format!("Product {n}"),
            price: Price {
                amount,
                currency: currency.to_owned(),
            },
            active,
        }
    }

    fn order(lines: &[(u8, i32)]) -> PlaceOrder {
        PlaceOrder {
            items: lines
                .iter()
                .map(|(n, quantity)| Item {
                    product_id: format!("prod_{n:032x}"),
                    quantity: *quantity,
                })
                .collect(),
            shipping_address: Address {
                name: "Ada".into(),
                line1: "1 Road".into(),
                line2: None,
                city: "London".into(),
                postal_code: "N1".into(),
                country: "GB".into(),
            },
            payment: Payment {
                card_token: "tok_visa".into(),
            },
        }
    }

    #[test]
    fn lines_get_the_catalog_price_and_the_total_is_their_sum() {
        let lookup = Lookup {
            items: vec![product(1, 4999, "EUR", true), product(2, 250, "EUR", true)],
            not_found: vec![],
        };
        let (lines, total) = price(&order(&[(2, 3), (1, 2)]), &lookup).unwrap();
        assert_eq!(lines[0].sku, "SKU-2");
        assert_eq!(lines[0].line_total.amount, 750);
        assert_eq!(lines[1].unit_price.amount, 4999);
        assert_eq!(total.amount, 750 + 9998);
        assert_eq!(total.currency, "EUR");
    }

    #[test]
    fn unknown_and_inactive_products_are_named_by_line() {
        let lookup = Lookup {
            items: vec![product(1, 100, "EUR", true), product(2, 100, "EUR", false)],
            not_found: vec![format!("prod_{:032x}", 3)],
        };
        let errors = price(&order(&[(1, 1), (2, 1), (3, 1)]), &lookup).unwrap_err();
        let named: Vec<_> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                ("items[1].product_id", "inactive"),
                ("items[2].product_id", "unknown")
            ]
        );
    }

    #[test]
    fn products_in_two_currencies_cannot_be_ordered_together() {
        let lookup = Lookup {
            items: vec![product(1, 100, "EUR", true), product(2, 100, "USD", true)],
            not_found: vec![],
        };
        let errors = price(&order(&[(1, 1), (2, 1)]), &lookup).unwrap_err();
        assert_eq!(errors[0].field, "items");
        assert_eq!(errors[0].code, "mixed_currencies");
        assert!(
            errors[0].message.contains("EUR and USD"),
            "{}",
            errors[0].message
        );
    }
}

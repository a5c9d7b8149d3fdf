//! The checkout, end to end through the gateway on real processes: the saga across the
//! order, catalog, inventory, payment and shipping services, each outcome with its
//! compensation, idempotent placement, bad input, and the saga surviving the death of
//! a service in the middle of a checkout.
//!
//! Each test buys a product of its own (created by the admin with its own stock), so
//! stock counts are exact whatever runs beside it. The stack runs with short saga
//! deadlines and a fast simulated carrier (see `start` in `main.rs`).

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shop_stack::Stack;

use crate::{http, stack, stack_alone, within};

const PATIENCE: Duration = Duration::from_secs(45);

pub(crate) struct Shopper {
    client: Client,
    gateway: String,
    token: String,
    admin: String,
    /// The stack's database, as its superuser: the full stock counts are not public.
    db: sqlx::PgPool,
}

impl Shopper {
    pub(crate) async fn new(stack: &Stack) -> Self {
        let client = http();
        let gateway = stack.base_url("gateway");
        let email = format!("shopper-{:016x}@shop.test", fastrand::u64(..));
        let password = "a-long-enough-password";
        let registered = client
            .post(format!("{gateway}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": password, "name": "Shopper"}))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), StatusCode::CREATED);
        let token = login(&client, &gateway, &email, password).await;
        let admin = login(&client, &gateway, "admin@shop.local", "admin-password-dev").await;
        let db = sqlx::PgPool::connect(&stack.pg_admin_url()).await.unwrap();
        Self {
            client,
            gateway,
            token,
            admin,
            db,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A product of this test's own, with `stock` units, once the inventory knows it.
    pub(crate) async fn product(&self, price: i64, stock: i64) -> (String, String) {
        let sku = format!("E2E-{:010X}", fastrand::u64(..) & 0xff_ffff_ffff);
        let created = self
            .client
            .post(self.url("/api/v1/products"))
            .bearer_auth(&self.admin)
            .json(&json!({
                "sku": sku, "name": format!("Checkout test item {sku}"),
                "description": "bought by the e2e checkout tests",
                "price": {"amount": price, "currency": "EUR"}, "category": "kitchen"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            created.status(),
            StatusCode::CREATED,
            "{:?}",
            created.text().await
        );
        let product: Value = created.json().await.unwrap();
        let id = product["id"].as_str().unwrap().to_owned();
        within(PATIENCE, "the stock record of the new product", || async {
            let (status, _) = self
                .get(&format!("/api/v1/inventory/{sku}"), &self.admin)
                .await;
            (status == StatusCode::OK).then_some(())
        })
        .await;
        let received = self
            .client
            .post(self.url(&format!("/api/v1/inventory/{sku}/receive")))
            .bearer_auth(&self.admin)
            .json(&json!({"quantity": stock, "reason": "e2e checkout"}))
            .send()
            .await
            .unwrap();
        assert_eq!(received.status(), StatusCode::OK);
        (id, sku)
    }

    /// `(on_hand, reserved, available)` of a SKU, from the inventory's own table (the
    /// public API shows only what is available).
    async fn stock(&self, sku: &str) -> (i64, i64, i64) {
        sqlx::query_as(
            "SELECT on_hand::bigint, reserved::bigint, available::bigint FROM inventory.stock WHERE sku = $1",
        )
        .bind(sku)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }

    async fn place(&self, key: &str, items: Value, card: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/orders"))
            .bearer_auth(&self.token)
            .header("idempotency-key", key)
            .json(&order_body(items, card))
            .send()
            .await
            .unwrap()
    }

    /// Places an order and returns its id.
    pub(crate) async fn order(&self, items: Value, card: &str) -> String {
        let key = format!("e2e-{:032x}", fastrand::u128(..));
        let response = self.place(&key, items, card).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert!(response.headers().contains_key("location"));
        let order: Value = response.json().await.unwrap();
        order["id"].as_str().unwrap().to_owned()
    }

    /// Waits for the order to reach `status`, and returns it.
    pub(crate) async fn reaches(&self, id: &str, status: &str) -> Value {
        within(PATIENCE, &format!("order {id} to be {status}"), || async {
            let (_, order) = self.get(&format!("/api/v1/orders/{id}"), &self.token).await;
            (order["status"] == status).then_some(order)
        })
        .await
    }

    async fn payments(&self, order: &str) -> Vec<Value> {
        let (status, list) = self
            .get(&format!("/api/v2/payments?order_id={order}"), &self.token)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["items"].as_array().cloned().unwrap_or_default()
    }
}

fn order_body(items: Value, card: &str) -> Value {
    json!({
        "items": items,
        "shipping_address": {
            "name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
            "postal_code": "SW1Y 4JH", "country": "GB"
        },
        "payment": {"card_token": card},
    })
}

async fn login(client: &Client, gateway: &str, email: &str, password: &str) -> String {
    let pair: Value = client
        .post(format!("{gateway}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    pair["access_token"].as_str().unwrap().to_owned()
}

fn steps(order: &Value) -> Vec<String> {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_customer_buys_two_products_that_are_paid_shipped_and_delivered() {
    let stack = stack().await;
    let shop = Shopper::new(&stack).await;
    let (kettle, kettle_sku) = shop.product(4999, 10).await;
    let (mug, mug_sku) = shop.product(1299, 10).await;
    // Browsing: the product is public.
    let (status, listed) = shop
        .get(&format!("/api/v1/products/{kettle}"), "none")
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");

    let order = shop
        .order(
            json!([{"product_id": kettle, "quantity": 2}, {"product_id": mug, "quantity": 1}]),
            "tok_visa",
        )
        .await;
    let confirmed = shop.reaches(&order, "CONFIRMED").await;
    assert_eq!(
        confirmed["total"]["amount"],
        2 * 4999 + 1299,
        "sold at the catalog's prices"
    );

    let delivered = shop.reaches(&order, "DELIVERED").await;
    let history = steps(&delivered);
    for step in [
        "PENDING",
        "AWAITING_PAYMENT",
        "CONFIRMED",
        "SHIPPED",
        "DELIVERED",
    ] {
        assert!(history.iter().any(|s| s == step), "{step} in {history:?}");
    }
    assert_eq!(shop.stock(&kettle_sku).await, (8, 0, 8), "stock committed");
    assert_eq!(shop.stock(&mug_sku).await, (9, 0, 9));
    let payments = within(PATIENCE, "the capture", || async {
        let payments = shop.payments(&order).await;
        (payments.len() == 1 && payments[0]["state"] == "captured").then_some(payments)
    })
    .await;
    assert_eq!(payments[0]["amount"]["value"], 2 * 4999 + 1299);
    // v1 of payments is deprecated: its headers pass the gateway untouched, and the
    // migration guide its Link names is served where the link points.
    let v1 = shop
        .client
        .get(shop.url(&format!("/api/v1/payments?order_id={order}")))
        .bearer_auth(&shop.token)
        .send()
        .await
        .unwrap();
    assert_eq!(v1.status(), StatusCode::OK);
    assert!(v1.headers().contains_key("deprecation"));
    assert!(v1.headers().contains_key("sunset"));
    let link = v1.headers()["link"].to_str().unwrap().to_owned();
    let guide = link
        .split(',')
        .find(|l| l.contains("rel=\"deprecation\""))
        .and_then(|l| l.split(['<', '>']).nth(1))
        .unwrap_or_else(|| panic!("a deprecation link in {link}"));
    let guide = shop.client.get(shop.url(guide)).send().await.unwrap();
    assert_eq!(guide.status(), StatusCode::OK);
    assert!(
        guide.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    assert!(guide.text().await.unwrap().contains("pay_"));
    let (_, shipments) = shop
        .get(&format!("/api/v1/shipments?order_id={order}"), &shop.token)
        .await;
    let shipment = &shipments["items"][0];
    assert!(
        shipment["tracking_number"]
            .as_str()
            .unwrap()
            .starts_with("SHP")
    );
    assert_eq!(shipment["status"], "DELIVERED");

    // The gateway's aggregate shows all three at once.
    let (status, details) = shop
        .get(&format!("/api/v1/orders/{order}/details"), &shop.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(details["order"]["status"], "DELIVERED");
    assert_eq!(details["payment"]["state"], "captured");
    assert_eq!(details["shipment"]["status"], "DELIVERED");
    assert_eq!(details["unavailable"], json!([]));
}

#[tokio::test]
async fn a_declined_card_cancels_the_order_and_puts_the_stock_back() {
    let stack = stack().await;
    let shop = Shopper::new(&stack).await;
    let (product, sku) = shop.product(2500, 5).await;

    let order = shop
        .order(
            json!([{"product_id": product, "quantity": 3}]),
            "tok_chargeDeclined",
        )
        .await;
    let cancelled = shop.reaches(&order, "CANCELLED").await;

    assert_eq!(cancelled["cancel_reason"], "PAYMENT_DECLINED");
    within(PATIENCE, "the reservation to be released", || async {
        (shop.stock(&sku).await == (5, 0, 5)).then_some(())
    })
    .await;
    let payments = shop.payments(&order).await;
    assert!(
        payments
            .iter()
            .all(|p| p["state"] != "captured" && p["state"] != "authorized")
    );
}

#[tokio::test]
async fn an_order_for_more_than_the_stock_is_cancelled_and_nothing_is_charged() {
    let stack = stack().await;
    let shop = Shopper::new(&stack).await;
    let (product, sku) = shop.product(999, 2).await;

    let order = shop
        .order(json!([{"product_id": product, "quantity": 3}]), "tok_visa")
        .await;
    let cancelled = shop.reaches(&order, "CANCELLED").await;

    assert_eq!(cancelled["cancel_reason"], "OUT_OF_STOCK");
    assert_eq!(shop.stock(&sku).await, (2, 0, 2));
    assert!(
        shop.payments(&order).await.is_empty(),
        "no payment was even asked"
    );
}

#[tokio::test]
async fn a_processor_that_hangs_ends_in_a_timeout_with_everything_compensated() {
    let stack = stack().await;
    let shop = Shopper::new(&stack).await;
    let (product, sku) = shop.product(1500, 4).await;

    let order = shop
        .order(
            json!([{"product_id": product, "quantity": 1}]),
            "tok_timeout",
        )
        .await;
    let cancelled = shop.reaches(&order, "CANCELLED").await;

    assert_eq!(cancelled["cancel_reason"], "TIMEOUT");
    within(
        PATIENCE,
        "the stock and the payment to be compensated",
        || async {
            let stock = shop.stock(&sku).await;
            let payments = shop.payments(&order).await;
            let nothing_held = payments
                .iter()
                .all(|p| p["state"] != "authorized" && p["state"] != "captured");
            (stock == (4, 0, 4) && nothing_held).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_same_placement_sent_five_times_at_once_makes_one_order_and_one_charge() {
    let stack = stack().await;
    let shop = Shopper::new(&stack).await;
    let (product, sku) = shop.product(3000, 10).await;
    let items = json!([{"product_id": product, "quantity": 2}]);
    let key = format!("e2e-same-{:032x}", fastrand::u128(..));

    let answers =
        futures::future::join_all((0..5).map(|_| shop.place(&key, items.clone(), "tok_visa")))
            .await;
    let mut ids = Vec::new();
    for answer in answers {
        assert!(answer.status().is_success(), "{}", answer.status());
        let order: Value = answer.json().await.unwrap();
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order: {ids:?}");
    let order = &ids[0];
    shop.reaches(order, "CONFIRMED").await;
    let payments = within(PATIENCE, "the capture", || async {
        let payments = shop.payments(order).await;
        payments
            .iter()
            .any(|p| p["state"] == "captured")
            .then_some(payments)
    })
    .await;
    assert_eq!(payments.len(), 1, "one charge");
    assert_eq!(shop.stock(&sku).await.0, 8, "stock taken once");

    // The same key with another body is refused.
    let other = shop
        .place(
            &key,
            json!([{"product_id": product, "quantity": 1}]),
            "tok_visa",
        )
        .await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn bad_placements_get_the_right_problem_and_write_nothing() {
    let stack = stack().await;
    let shop = Shopper::new(&stack).await;
    let (product, sku) = shop.product(1000, 5).await;
    let key = || format!("e2e-bad-{:032x}", fastrand::u128(..));

    let cases = [
        (json!([]), "no lines"),
        (
            json!([{"product_id": product, "quantity": 0}]),
            "quantity 0",
        ),
        (
            json!([{"product_id": product, "quantity": 100_000}]),
            "quantity out of range",
        ),
        (
            json!([{"product_id": "prod_00000000000000000000000000000000", "quantity": 1}]),
            "unknown product",
        ),
        (json!([{"quantity": 1}]), "no product id"),
    ];
    for (items, what) in cases {
        let response = shop.place(&key(), items, "tok_visa").await;
        assert!(
            response.status().is_client_error(),
            "{what}: {}",
            response.status()
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
    }
    let no_key = shop
        .client
        .post(shop.url("/api/v1/orders"))
        .bearer_auth(&shop.token)
        .json(&order_body(
            json!([{"product_id": product, "quantity": 1}]),
            "tok_visa",
        ))
        .send()
        .await
        .unwrap();
    assert!(no_key.status().is_client_error(), "{}", no_key.status());
    let anonymous = shop
        .client
        .post(shop.url("/api/v1/orders"))
        .header("idempotency-key", key())
        .json(&order_body(
            json!([{"product_id": product, "quantity": 1}]),
            "tok_visa",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let (_, mine) = shop.get("/api/v1/orders", &shop.token).await;
    assert_eq!(mine["items"], json!([]), "nothing was written");
    assert_eq!(shop.stock(&sku).await, (5, 0, 5));

    // Someone else's order is not found.
    let order = shop
        .order(json!([{"product_id": product, "quantity": 1}]), "tok_visa")
        .await;
    let stranger = Shopper::new(&stack).await;
    let (status, _) = stranger
        .get(&format!("/api/v1/orders/{order}"), &stranger.token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Kills `service` right after an order is placed, restarts it after a moment, and
/// checks the saga still ends CONFIRMED with one charge and the stock taken once.
async fn survives_the_death_of(service: &str) {
    let stack = stack_alone().await;
    let shop = Shopper::new(&stack).await;
    let (product, sku) = shop.product(4200, 6).await;

    let order = if service == "order" {
        let order = shop
            .order(json!([{"product_id": product, "quantity": 2}]), "tok_visa")
            .await;
        stack.kill(service).await.unwrap();
        order
    } else {
        stack.kill(service).await.unwrap();
        shop.order(json!([{"product_id": product, "quantity": 2}]), "tok_visa")
            .await
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.restart(service).await.unwrap();

    shop.reaches(&order, "CONFIRMED").await;
    let payments = within(PATIENCE, "the capture", || async {
        let payments = shop.payments(&order).await;
        payments
            .iter()
            .any(|p| p["state"] == "captured")
            .then_some(payments)
    })
    .await;
    assert_eq!(payments.len(), 1, "charged once");
    within(PATIENCE, "the stock to be committed once", || async {
        (shop.stock(&sku).await == (4, 0, 4)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_checkout_survives_the_inventory_dying_in_the_middle() {
    survives_the_death_of("inventory").await;
}

#[tokio::test]
async fn a_checkout_survives_the_payment_service_dying_in_the_middle() {
    survives_the_death_of("payment").await;
}

#[tokio::test]
async fn a_checkout_survives_the_order_service_dying_in_the_middle() {
    survives_the_death_of("order").await;
}

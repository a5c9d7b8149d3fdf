//! Never oversell: many orders racing for few units, through the consumers and
//! through the reservation function itself, and the database's own constraints.

use shop_events::contracts::inventory::{StockRejected, StockReserved};
use shop_inventory::reservations::{self, Status};
use uuid::Uuid;

use crate::helpers::{eventually, reserve_command, spawn_app};

const ORDERS: usize = 200;
const UNITS: i64 = 10;

#[tokio::test]
async fn two_hundred_orders_sent_at_once_for_ten_units_reserve_exactly_ten() {
    let app = spawn_app().await;
    app.stocked("HOT-1", UNITS).await;

    let sends = (0..ORDERS).map(|_| app.reserve(&[("HOT-1", 1)], 600));
    futures::future::join_all(sends).await;
    eventually("every order answered", || async {
        let answered: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory.reservations")
            .fetch_one(app.db.admin_pool())
            .await
            .unwrap();
        answered == ORDERS as i64
    })
    .await;

    assert_eq!(app.published::<StockReserved>().await.len(), UNITS as usize);
    let rejected = app.published::<StockRejected>().await;
    assert_eq!(rejected.len(), ORDERS - UNITS as usize);
    assert!(rejected.iter().all(|r| r.short[0].available == 0));
    assert_eq!(app.counts("HOT-1").await, (UNITS, UNITS, 0));
}

#[tokio::test]
async fn two_hundred_concurrent_reserve_calls_for_ten_units_reserve_exactly_ten() {
    let app = spawn_app().await;
    app.stocked("HOT-1", UNITS).await;
    let pool = app.service_pool(25).await;
    let outbox = app.outbox(pool.clone());

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..ORDERS {
        let (pool, outbox) = (pool.clone(), outbox.clone());
        calls.spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let command = reserve_command(Uuid::now_v7(), &[("HOT-1", 1)], 600);
            let status = reservations::reserve(&mut tx, &outbox, command)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            status
        });
    }
    let statuses = calls.join_all().await;

    let reserved = statuses.iter().filter(|s| **s == Status::Reserved).count();
    let rejected = statuses.iter().filter(|s| **s == Status::Rejected).count();
    assert_eq!(
        (reserved, rejected),
        (UNITS as usize, ORDERS - UNITS as usize)
    );
    assert_eq!(app.counts("HOT-1").await, (UNITS, UNITS, 0));
}

#[tokio::test]
async fn concurrent_orders_naming_the_same_skus_in_opposite_orders_never_deadlock() {
    let app = spawn_app().await;
    app.stocked("AAA-1", 1000).await;
    app.stocked("ZZZ-1", 1000).await;
    let pool = app.service_pool(25).await;
    let outbox = app.outbox(pool.clone());

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (pool, outbox) = (pool.clone(), outbox.clone());
        let lines: &[(&str, i32)] = if i % 2 == 0 {
            &[("AAA-1", 1), ("ZZZ-1", 1)]
        } else {
            &[("ZZZ-1", 1), ("AAA-1", 1)]
        };
        let command = reserve_command(Uuid::now_v7(), lines, 600);
        calls.spawn(async move {
            let mut tx = pool.begin().await?;
            let status = reservations::reserve(&mut tx, &outbox, command).await;
            tx.commit().await?;
            anyhow::Ok(status?)
        });
    }
    let outcomes = calls.join_all().await;

    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(Status::Reserved))),
        "every order reserved, none deadlocked: {:?}",
        outcomes.iter().filter(|o| o.is_err()).collect::<Vec<_>>()
    );
    assert_eq!(app.counts("AAA-1").await, (1000, 100, 900));
    assert_eq!(app.counts("ZZZ-1").await, (1000, 100, 900));
}

#[tokio::test]
async fn the_database_refuses_negative_stock_and_more_reserved_than_on_hand() {
    let app = spawn_app().await;
    app.stocked("HOT-1", UNITS).await;
    let pool = app.service_pool(1).await;
    let statements = [
        "UPDATE stock SET reserved = on_hand + 1 WHERE sku = 'HOT-1'",
        "UPDATE stock SET on_hand = -1 WHERE sku = 'HOT-1'",
        "UPDATE stock SET reserved = -1 WHERE sku = 'HOT-1'",
    ];
    for statement in statements {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("23514"), "{statement}: {error}");
    }
    assert_eq!(app.counts("HOT-1").await, (UNITS, 0, UNITS));
}

//! Reservation commands through NATS: reserve all or nothing, commit, release, expiry,
//! idempotency, and commands that cannot be applied.

use shop_events::contracts::inventory::{
    CommitReservation, ReleaseReservation, ReturnStock, Shortage, StockCommitted, StockExpired,
    StockRejected, StockReleased, StockReserved, StockReturned,
};
use uuid::Uuid;

use crate::helpers::{eventually, reserve_command, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_reservation_holds_every_line_and_publishes_stock_reserved() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    app.stocked("B-1", 10).await;

    let order = app.reserve(&[("B-1", 3), ("A-1", 2)], 600).await;
    app.wait_status(order, "reserved").await;

    assert_eq!(app.counts("A-1").await, (10, 2, 8));
    assert_eq!(app.counts("B-1").await, (10, 3, 7));
    let reserved = app.published_at_least::<StockReserved>(1).await;
    assert_eq!(reserved[0].order_id, order);
    assert_eq!(reserved[0].lines.len(), 2);
    assert!(reserved[0].expires_at > chrono::Utc::now() + chrono::Duration::seconds(500));
}

#[tokio::test]
async fn a_reservation_with_one_short_line_holds_nothing_and_names_the_short_lines() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    app.stocked("B-1", 1).await;

    let order = app
        .reserve(&[("A-1", 2), ("B-1", 5), ("UNKNOWN-9", 1)], 600)
        .await;
    app.wait_status(order, "rejected").await;

    assert_eq!(
        app.counts("A-1").await,
        (10, 0, 10),
        "the good line holds nothing"
    );
    assert_eq!(app.counts("B-1").await, (1, 0, 1));
    let rejected = app.published_at_least::<StockRejected>(1).await;
    assert_eq!(rejected[0].order_id, order);
    assert_eq!(
        rejected[0].short,
        [
            Shortage {
                sku: "B-1".to_owned(),
                requested: 5,
                available: 1
            },
            Shortage {
                sku: "UNKNOWN-9".to_owned(),
                requested: 1,
                available: 0
            },
        ]
    );
    assert!(app.published::<StockReserved>().await.is_empty());
}

#[tokio::test]
async fn the_same_reserve_twice_has_one_effect_and_gets_the_same_answer() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    app.stocked("B-1", 10).await;
    let order = Uuid::now_v7();
    // Lines out of SKU order: the answers list them in one order, both times.
    let command = reserve_command(order, &[("B-1", 2), ("A-1", 4)], 600);

    app.publish(command.clone()).await;
    app.wait_status(order, "reserved").await;
    app.publish(command).await;
    let answers = app.published_at_least::<StockReserved>(2).await;

    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0], answers[1], "the same answer, the same expiry");
    assert_eq!(app.counts("A-1").await, (10, 4, 6), "reserved once");
    assert_eq!(app.counts("B-1").await, (10, 2, 8), "reserved once");
    let movements: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inventory.stock_movements WHERE order_id = $1")
            .bind(order)
            .fetch_one(app.db.admin_pool())
            .await
            .unwrap();
    assert_eq!(movements, 2, "one per line");
}

#[tokio::test]
async fn a_commit_takes_the_reserved_stock_out_for_good_once() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    let order = app.reserve(&[("A-1", 3)], 600).await;
    app.wait_status(order, "reserved").await;

    app.publish(CommitReservation { order_id: order }).await;
    app.wait_status(order, "committed").await;
    app.publish(CommitReservation { order_id: order }).await;
    let committed = app.published_at_least::<StockCommitted>(2).await;

    assert_eq!(committed[0].order_id, order);
    assert_eq!(committed[0].lines[0].quantity, 3);
    assert_eq!(app.counts("A-1").await, (7, 0, 7), "committed once");
}

#[tokio::test]
async fn a_release_makes_the_stock_available_again() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    let order = app.reserve(&[("A-1", 6)], 600).await;
    app.wait_status(order, "reserved").await;
    assert_eq!(app.counts("A-1").await, (10, 6, 4));

    let reason = "payment declined".to_owned();
    app.publish(ReleaseReservation {
        order_id: order,
        reason: reason.clone(),
    })
    .await;
    app.wait_status(order, "released").await;

    assert_eq!(app.counts("A-1").await, (10, 0, 10));
    let released = app.published_at_least::<StockReleased>(1).await;
    assert_eq!(released[0].order_id, order);
    assert_eq!(released[0].reason, reason);
    assert_eq!(released[0].lines[0].quantity, 6);
}

#[tokio::test]
async fn a_release_before_its_reserve_makes_the_late_reserve_hold_nothing() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    let order = Uuid::now_v7();

    app.publish(ReleaseReservation {
        order_id: order,
        reason: "checkout cancelled".to_owned(),
    })
    .await;
    app.wait_status(order, "released").await;
    app.publish(reserve_command(order, &[("A-1", 2)], 600))
        .await;
    app.published_at_least::<StockReleased>(2).await;

    assert_eq!(app.counts("A-1").await, (10, 0, 10));
    assert!(app.published::<StockReserved>().await.is_empty());
}

#[tokio::test]
async fn an_expired_reservation_is_released_and_published_as_expired() {
    let app = spawn_app_with(|s| s.stock.expire_every_millis = 100).await;
    app.stocked("A-1", 10).await;

    let order = app.reserve(&[("A-1", 7)], 1).await;
    app.wait_status(order, "expired").await;

    assert_eq!(app.counts("A-1").await, (10, 0, 10));
    let expired = app.published_at_least::<StockExpired>(1).await;
    assert_eq!(expired[0].order_id, order);
    assert_eq!(expired[0].lines[0].quantity, 7);
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM inventory.stock_movements WHERE order_id = $1 ORDER BY id",
    )
    .bind(order)
    .fetch_all(app.db.admin_pool())
    .await
    .unwrap();
    assert_eq!(kinds, ["reserve", "expire"]);
}

#[tokio::test]
async fn a_commit_after_the_ttl_expires_the_reservation_and_is_answered_expired() {
    // The sweeper runs at start and then not for an hour: the commit must see the
    // TTL itself.
    let app = spawn_app_with(|s| s.stock.expire_every_millis = 3_600_000).await;
    app.stocked("A-1", 10).await;
    let order = app.reserve(&[("A-1", 3)], 1).await;
    app.wait_status(order, "reserved").await;
    eventually("the TTL to pass", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT expires_at <= now() FROM inventory.reservations WHERE order_id = $1",
        )
        .bind(order)
        .fetch_one(app.db.admin_pool())
        .await
        .unwrap()
    })
    .await;

    app.publish(CommitReservation { order_id: order }).await;
    app.wait_status(order, "expired").await;
    assert_eq!(
        app.counts("A-1").await,
        (10, 0, 10),
        "nothing left the books"
    );
    let expired = app.published_at_least::<StockExpired>(1).await;
    assert_eq!(expired[0].order_id, order);
    assert!(app.published::<StockCommitted>().await.is_empty());

    // Asked again, it says the same and changes nothing.
    app.publish(CommitReservation { order_id: order }).await;
    app.published_at_least::<StockExpired>(2).await;
    assert_eq!(app.counts("A-1").await, (10, 0, 10));
}

#[tokio::test]
async fn a_release_after_the_commit_changes_nothing_and_is_answered_committed() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    let order = app.reserve(&[("A-1", 2)], 600).await;
    app.wait_status(order, "reserved").await;
    app.publish(CommitReservation { order_id: order }).await;
    app.wait_status(order, "committed").await;

    app.publish(ReleaseReservation {
        order_id: order,
        reason: "too late".to_owned(),
    })
    .await;

    let committed = app.published_at_least::<StockCommitted>(2).await;
    assert!(committed.iter().all(|c| c.order_id == order));
    assert!(app.published::<StockReleased>().await.is_empty());
    assert_eq!(app.status(order).await.as_deref(), Some("committed"));
    assert_eq!(app.counts("A-1").await, (8, 0, 8));
}

#[tokio::test]
async fn a_return_puts_committed_stock_back_on_the_shelf_once() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    let order = app.reserve(&[("A-1", 4)], 600).await;
    app.wait_status(order, "reserved").await;
    app.publish(CommitReservation { order_id: order }).await;
    app.wait_status(order, "committed").await;
    assert_eq!(app.counts("A-1").await, (6, 0, 6));

    for _ in 0..2 {
        app.publish(ReturnStock {
            order_id: order,
            reason: "CANCELLED_BY_CUSTOMER".to_owned(),
        })
        .await;
    }
    app.wait_status(order, "returned").await;
    let returned = app.published_at_least::<StockReturned>(2).await;

    assert!(
        returned
            .iter()
            .all(|r| r.order_id == order && r.lines[0].quantity == 4)
    );
    assert_eq!(app.counts("A-1").await, (10, 0, 10), "returned once");
}

#[tokio::test]
async fn a_return_of_a_reservation_still_held_releases_it() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    let order = app.reserve(&[("A-1", 4)], 600).await;
    app.wait_status(order, "reserved").await;

    app.publish(ReturnStock {
        order_id: order,
        reason: "CANCELLED_BY_CUSTOMER".to_owned(),
    })
    .await;
    app.wait_status(order, "released").await;

    assert_eq!(app.counts("A-1").await, (10, 0, 10));
    assert_eq!(
        app.published_at_least::<StockReleased>(1).await[0].order_id,
        order
    );
}

#[tokio::test]
async fn a_commit_for_an_order_never_reserved_is_dead_lettered() {
    let app = spawn_app().await;
    let unknown = Uuid::now_v7();

    app.publish(CommitReservation { order_id: unknown }).await;

    let reasons = app.dead_letter_reasons(1).await;
    assert!(reasons[0].contains("no reservation"), "{reasons:?}");
    assert_eq!(app.status(unknown).await, None);
}

#[tokio::test]
async fn malformed_commands_go_to_the_dead_letter_stream_with_their_reason() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    let malformed = [
        (reserve_command(Uuid::now_v7(), &[], 60), "no lines"),
        (
            reserve_command(Uuid::now_v7(), &[("A-1", 0)], 60),
            "quantity",
        ),
        (
            reserve_command(Uuid::now_v7(), &[("A-1", 1), ("A-1", 2)], 60),
            "two lines",
        ),
        (
            reserve_command(Uuid::now_v7(), &[("A-1", 1)], 0),
            "ttl_secs",
        ),
    ];
    for (command, _) in &malformed {
        app.publish(command.clone()).await;
    }
    let garbage = serde_json::json!({
        "id": Uuid::now_v7(), "type": "inventory.reservation.reserve", "version": 1,
        "occurred_at": "2026-11-21T12:00:00Z", "source": "test",
        "data": {"order_id": "not-a-uuid", "lines": [], "ttl_secs": 60}
    });
    app.publish_raw(
        "inventory.reservation.reserve",
        "garbage",
        serde_json::to_vec(&garbage).unwrap(),
    )
    .await;

    let reasons = app.dead_letter_reasons(malformed.len() + 1).await;
    for (_, expected) in &malformed {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "no dead letter says {expected:?}: {reasons:?}"
        );
    }
    eventually("nothing reserved", || async {
        app.counts("A-1").await == (10, 0, 10)
    })
    .await;
    let reservations: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory.reservations")
        .fetch_one(app.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(reservations, 0, "no malformed command left a trace");
}

#[tokio::test]
async fn lines_keep_one_order_whatever_the_collation_of_the_database() {
    let app = spawn_app().await;
    // Compare SKUs the way a database created with an en_US locale would (`TEE-b`
    // before `TEE-C`); byte order, which `reserve` locks in, says the opposite.
    sqlx::query(
        r#"ALTER TABLE inventory.reservation_lines ALTER COLUMN sku TYPE text COLLATE "en-x-icu""#,
    )
    .execute(app.db.admin_pool())
    .await
    .unwrap();
    app.stocked("TEE-C", 10).await;
    app.stocked("TEE-b", 10).await;
    let order = app.reserve(&[("TEE-b", 1), ("TEE-C", 1)], 600).await;
    app.wait_status(order, "reserved").await;

    app.publish(CommitReservation { order_id: order }).await;
    app.wait_status(order, "committed").await;

    let reserved = app.published::<StockReserved>().await;
    let committed = app.published::<StockCommitted>().await;
    let skus: Vec<&str> = committed[0].lines.iter().map(|l| l.sku.as_str()).collect();
    assert_eq!(skus, ["TEE-C", "TEE-b"], "byte order");
    assert_eq!(
        reserved[0].lines, committed[0].lines,
        "one order in every answer"
    );
}

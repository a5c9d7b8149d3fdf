//! The databases the testkit hands out: one per test, each service in its own schema.

use sqlx::{Connection as _, PgConnection};

/// The SQLSTATE of a failed statement, `None` when it succeeded.
async fn sqlstate(conn: &mut PgConnection, sql: &'static str) -> Option<String> {
    match sqlx::query(sql).execute(conn).await {
        Ok(_) => None,
        Err(e) => Some(
            e.as_database_error()
                .and_then(|db| db.code())
                .unwrap_or_else(|| panic!("{sql}: not a database error: {e}"))
                .into_owned(),
        ),
    }
}

const PERMISSION_DENIED: Option<&str> = Some("42501");

#[tokio::test]
async fn two_fresh_databases_are_distinct() {
    let (a, b) = (
        shop_testkit::fresh_database().await,
        shop_testkit::fresh_database().await,
    );
    assert_ne!(a.name, b.name);

    sqlx::query("CREATE TABLE users.only_in_a (id int)")
        .execute(a.admin_pool())
        .await
        .unwrap();
    let in_b: Option<String> = sqlx::query_scalar("SELECT to_regclass('users.only_in_a')::text")
        .fetch_one(b.admin_pool())
        .await
        .unwrap();
    assert_eq!(in_b, None);
}

#[tokio::test]
async fn every_service_schema_exists_in_a_fresh_database() {
    let db = shop_testkit::fresh_database().await;
    for (svc, data) in shop_topology::with_data() {
        let owner: String = sqlx::query_scalar(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1",
        )
        .bind(data.schema)
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
        assert_eq!(
            owner, data.role,
            "owner of {}'s schema {}",
            svc.name, data.schema
        );
    }
}

#[tokio::test]
async fn every_service_with_data_logs_in_as_its_own_role_into_its_own_schema() {
    let db = shop_testkit::fresh_database().await;
    for (svc, data) in shop_topology::with_data() {
        let mut conn = PgConnection::connect(&db.service_url(svc.name))
            .await
            .unwrap_or_else(|e| panic!("{} cannot log in: {e}", svc.name));
        let (user, schema): (String, Option<String>) =
            sqlx::query_as("SELECT current_user::text, current_schema()::text")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(user, data.role);
        assert_eq!(schema.as_deref(), Some(data.schema));
    }
}

#[tokio::test]
#[should_panic(expected = "owns data")]
async fn a_service_without_data_has_no_database_url() {
    let db = shop_testkit::fresh_database().await;
    let _ = db.service_url("gateway");
}

#[tokio::test]
async fn a_service_role_can_create_tables_in_its_own_schema() {
    let db = shop_testkit::fresh_database().await;
    let mut user_svc = PgConnection::connect(&db.service_url("user"))
        .await
        .unwrap();

    sqlx::query("CREATE TABLE users.accounts (id int PRIMARY KEY)")
        .execute(&mut user_svc)
        .await
        .unwrap();
    sqlx::query("INSERT INTO accounts VALUES (1)")
        .execute(&mut user_svc)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&mut user_svc)
        .await
        .unwrap();

    assert_eq!(count, 1, "its own schema is first on its search path");
}

#[tokio::test]
async fn a_service_role_cannot_read_or_write_another_services_schema() {
    let db = shop_testkit::fresh_database().await;
    let mut catalog_svc = PgConnection::connect(&db.service_url("catalog"))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE catalog.t (id int)")
        .execute(&mut catalog_svc)
        .await
        .unwrap();
    let mut user_svc = PgConnection::connect(&db.service_url("user"))
        .await
        .unwrap();

    assert_eq!(
        sqlstate(&mut user_svc, "SELECT * FROM catalog.t")
            .await
            .as_deref(),
        PERMISSION_DENIED
    );
    assert_eq!(
        sqlstate(&mut user_svc, "INSERT INTO catalog.t VALUES (1)")
            .await
            .as_deref(),
        PERMISSION_DENIED
    );
    assert_eq!(
        sqlstate(&mut user_svc, "CREATE TABLE catalog.mine (id int)")
            .await
            .as_deref(),
        PERMISSION_DENIED
    );
}

#[tokio::test]
async fn a_service_role_cannot_create_tables_in_public() {
    let db = shop_testkit::fresh_database().await;
    let mut user_svc = PgConnection::connect(&db.service_url("user"))
        .await
        .unwrap();

    assert_eq!(
        sqlstate(&mut user_svc, "CREATE TABLE public.anything (id int)")
            .await
            .as_deref(),
        PERMISSION_DENIED
    );
}

#[tokio::test]
async fn many_fresh_databases_can_be_made_at_once() {
    let made = tokio::task::JoinSet::from_iter((0..8).map(|_| shop_testkit::fresh_database()));
    let names: std::collections::BTreeSet<String> = made
        .join_all()
        .await
        .into_iter()
        .map(|db| db.name)
        .collect();
    assert_eq!(names.len(), 8);
}

#[tokio::test]
async fn bootstrapping_again_keeps_data_and_isolation() {
    let db = shop_testkit::fresh_database().await;
    let mut user_svc = PgConnection::connect(&db.service_url("user"))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE users.kept (id int)")
        .execute(&mut user_svc)
        .await
        .unwrap();

    shop_db::bootstrap(db.admin_pool(), |svc| shop_db::local_password(svc.role))
        .await
        .expect("a second bootstrap succeeds");

    let kept: Option<String> = sqlx::query_scalar("SELECT to_regclass('users.kept')::text")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("users.kept"));
    assert_eq!(
        sqlstate(&mut user_svc, "SELECT 1 FROM pg_namespace, catalog.none")
            .await
            .as_deref(),
        Some("42501"),
        "still no access to another schema"
    );
}

//! The payment service's HTTP API: read-only, in two versions of one resource, the
//! seed's versioning example. `v1` names payments by UUID and is deprecated (every
//! answer says so, with its sunset date and a link to the migration guide,
//! `docs/payments-v1-to-v2.md`); `v2` names them `pay_...` and shapes them anew.
//! Both read the same records through `crate::payments`; only the shapes differ.
//!
//! Who sees what, in both versions: a customer sees the payments they made, an admin
//! every payment. Someone else's payment is answered 404, exactly like an unknown id,
//! so ids cannot be probed; a listing by `order_id` shows only what the caller may
//! see (someone else's order lists nothing).

use serde::Deserialize;
use shop_auth::Claims;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::id::PaymentId;
use crate::payments::{self, Payment};
use crate::state::AppState;

pub mod v1;
pub mod v2;

/// `?order_id=`, both versions.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ByOrder {
    /// The order whose payments to list (a UUID).
    #[param(example = "01936f0e-7c4a-7d3e-9a51-000000000010")]
    pub order_id: Uuid,
}

/// The payment, if the caller may see it.
async fn visible(state: &AppState, claims: &Claims, id: PaymentId) -> Result<Payment> {
    let payment = payments::find(&state.db, id)
        .await?
        .ok_or(Error::PaymentNotFound)?;
    match claims.owner_scope() {
        Some(user) if payment.user_id != Some(user) => Err(Error::PaymentNotFound),
        _ => Ok(payment),
    }
}

/// The order's payments the caller may see.
async fn of_order(state: &AppState, claims: &Claims, order_id: Uuid) -> Result<Vec<Payment>> {
    Ok(payments::for_order(&state.db, order_id, claims.owner_scope()).await?)
}

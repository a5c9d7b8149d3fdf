//! Events of the users context (stream `USERS`, owned by the user service).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// A customer account was created. The welcome e-mail reacts to it; registration
/// does not wait for that. Consumers ignore fields they do not know, so adding one
/// is not a breaking change (removing or retyping one is: that is a new `VERSION`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
}

impl Event for UserRegistered {
    const TYPE: &'static str = "users.user.registered";
    const VERSION: u32 = 1;
}

//! A payment's id: one UUIDv7, written two ways. API v1 shows it as a UUID
//! (`0193...-...`), API v2 as `pay_` + the same 32 hex digits, so the two versions
//! name the same records and a client can move between them by rewriting the id.
//! The events carry the UUID (`payment_id` in `libs/events/src/contracts/payments.rs`).

use std::fmt;

use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentId(Uuid);

impl PaymentId {
    /// The v2 form's prefix.
    pub const PREFIX: &'static str = "pay_";

    /// Time-ordered, so the newest payment of an order sorts last.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn uuid(self) -> Uuid {
        self.0
    }

    /// The v1 form, a hyphenated UUID (36 characters); the other spellings a UUID
    /// parser accepts (simple, braced, `urn:`) are refused, so a record has one URL.
    pub fn parse_v1(raw: &str) -> Option<Self> {
        if raw.len() != 36 {
            return None;
        }
        Uuid::try_parse(raw).ok().map(Self)
    }

    /// The v2 form: `pay_` + 32 lower-case hex digits.
    pub fn parse_v2(raw: &str) -> Option<Self> {
        let hex = raw.strip_prefix(Self::PREFIX)?;
        let ok = hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            return None;
        }
        Uuid::try_parse(hex).ok().map(Self)
    }

    /// `pay_<32 hex>`.
    pub fn v2(self) -> String {
        format!("{}{}", Self::PREFIX, self.0.simple())
    }
}

impl From<Uuid> for PaymentId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

/// The v1 form.
impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_name_the_same_payment() {
        let id = PaymentId::generate();
        assert_eq!(PaymentId::parse_v1(&id.to_string()), Some(id));
        assert_eq!(PaymentId::parse_v2(&id.v2()), Some(id));
        assert_eq!(id.v2().len(), 36);
        assert!(id.v2().starts_with("pay_"));
    }

    #[test]
    fn anything_but_the_exact_forms_is_refused() {
        let id = PaymentId::generate();
        let simple = id.uuid().simple().to_string();
        for bad in [
            String::new(),
            simple.clone(),
            id.v2(),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            "not-a-uuid-at-all-not-a-uuid-at-all!".to_owned(),
        ] {
            assert_eq!(PaymentId::parse_v1(&bad), None, "v1 {bad:?}");
        }
        for bad in [
            String::new(),
            "pay_".to_owned(),
            id.to_string(),
            simple.clone(),
            format!("pay_{}", simple.to_uppercase()),
            format!("pay_{}", &simple[1..]),
            format!("ord_{simple}"),
            format!("pay_{}g", &simple[1..]),
        ] {
            assert_eq!(PaymentId::parse_v2(&bad), None, "v2 {bad:?}");
        }
    }
}

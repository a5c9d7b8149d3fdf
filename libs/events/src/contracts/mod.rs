//! The typed events of every context: the contracts between producers and consumers.
//! One module per context; each event's `TYPE` is its subject. Documented for humans
//! in `docs/events.md` and for tools in `docs/asyncapi.yaml`.

pub mod catalog;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod shipping;
pub mod users;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use crate::streams::{context_of, stream_of};

    #[test]
    fn every_contract_lands_in_the_stream_of_its_context() {
        for kind in [
            users::UserRegistered::TYPE,
            catalog::ProductCreated::TYPE,
            catalog::ProductUpdated::TYPE,
            catalog::ProductDeactivated::TYPE,
            inventory::ReserveStock::TYPE,
            inventory::CommitReservation::TYPE,
            inventory::ReleaseReservation::TYPE,
            inventory::ReturnStock::TYPE,
            inventory::StockReturned::TYPE,
            inventory::StockReserved::TYPE,
            inventory::StockRejected::TYPE,
            inventory::StockCommitted::TYPE,
            inventory::StockReleased::TYPE,
            inventory::StockExpired::TYPE,
            inventory::StockUpdated::TYPE,
            inventory::StockLow::TYPE,
            orders::OrderPlaced::TYPE,
            orders::OrderConfirmed::TYPE,
            orders::OrderCancelled::TYPE,
            payments::AuthorizePayment::TYPE,
            payments::CapturePayment::TYPE,
            payments::VoidPayment::TYPE,
            payments::PaymentAuthorized::TYPE,
            payments::PaymentDeclined::TYPE,
            payments::PaymentCaptured::TYPE,
            payments::PaymentVoided::TYPE,
            shipping::ShipmentCreated::TYPE,
            shipping::ShipmentDispatched::TYPE,
            shipping::ShipmentDelivered::TYPE,
            shipping::ShipmentCancelled::TYPE,
        ] {
            assert_eq!(
                kind.split('.').count(),
                3,
                "{kind}: <context>.<entity>.<fact>"
            );
            assert!(
                stream_of(context_of(kind)).is_some(),
                "{kind} has no stream"
            );
        }
    }
}

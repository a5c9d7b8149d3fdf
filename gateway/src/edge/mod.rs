//! The edge's policies about clients and responses: who is asking ([`client`],
//! [`apikeys`]), how much they may ask ([`ratelimit`]), and what browsers are told.

pub mod apikeys;
pub mod client;
pub mod cors;
pub mod headers;
pub mod ratelimit;

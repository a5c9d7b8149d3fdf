//! The gateway in front of real HTTP upstreams (small servers of the test's own on
//! free ports, so what reached them can be inspected): routing, policies, forwarding
//! headers, streaming, and every refusal as problem+json.

mod helpers;
mod policies;
mod proxying;
mod refusals;

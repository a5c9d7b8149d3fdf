//! shop-auth's tests: the key cache against a local stand-in for the issuer's JWKS
//! endpoint, and what clients are told when a token is refused.

mod errors;
mod helpers;
mod key_cache;

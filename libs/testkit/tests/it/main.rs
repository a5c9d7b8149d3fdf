//! Integration tests of the testkit: the tests of one binary share their servers, and
//! the databases it hands out really keep each service in its own schema.

mod databases;
mod shared;

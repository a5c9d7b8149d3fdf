//! Integration tests of the testkit: the servers really start, and the databases it
//! hands out really keep each service in its own schema.

mod databases;
mod servers;

//! The conformance suite on the PostgreSQL server of `PG_DATABASE_URL`, each
//! test in tables of its own.
#![cfg(feature = "postgres")]

mod common;

outband::conformance_tests!(common::server_queue(&common::pg_url()));

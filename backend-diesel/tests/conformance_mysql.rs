//! The conformance suite on the MariaDB/MySQL server of `MYSQL_DATABASE_URL`,
//! each test in tables of its own.
#![cfg(feature = "mysql")]

mod common;

outband::conformance_tests!(common::server_queue(&common::mysql_url()));

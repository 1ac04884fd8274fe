//! The conformance suite of `outband::test_suite` against the Redis at
//! `REDIS_URL`, each case in a namespace of its own.

mod support;

use outband_redis::RedisOptions;

outband::conformance_tests!(support::test_queue(RedisOptions::default()));

//! For backend authors: the rules every backend shares, stated once, and
//! helpers for the parts of a backend that are not its dialect.
//!
//! A backend states only its dialect (its SQL, its Lua); what a job becomes
//! after a run or an expired lease, how a URL's parameters are read and its
//! password hidden, and how run-time statistics are computed live here, so
//! that every backend — the in-memory one, Redis, the SQL ones and a third
//! party's — behaves and speaks alike.

pub mod fate;
pub mod hash;
pub mod stats;
pub mod url;

//! A stable hash: the same number for the same bytes on every platform, in
//! every version, for what a backend stores or lays out by hash (the bucket
//! of a queue in `outband-redis`, the lock row of an ordering key on MySQL).
//! `std`'s hashers promise neither.
//!
//! ```
//! use outband::backend::hash::fnv1a;
//!
//! assert_eq!(fnv1a(b""), 0x811c_9dc5);
//! assert_eq!(fnv1a(b"a"), 0xe40c_292c);
//! // a queue's bucket among 4,096
//! let bucket = fnv1a("emails".as_bytes()) % 4096;
//! assert!(bucket < 4096);
//! ```

/// FNV-1a, 32 bits, of `bytes`.
pub const fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u32).wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // from the reference test vectors of the FNV authors
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9c_f968);
    }
}

//! How arguments and results are turned into bytes: the one seam around the
//! serialization format.
//!
//! Everything outband stores goes through [`encode`] and [`decode`]. A payload
//! starts with a one-byte format tag, so a later format can be added beside
//! this one without touching callers or the jobs already stored.
//!
//! | tag | format |
//! |-----|--------|
//! | `1` | bincode 2.0.1, standard configuration (varint integers), via serde |
//!
//! bincode is no longer maintained (RUSTSEC-2025-0141). It is pinned to its
//! last working release and used nowhere else, so replacing it means adding a
//! tag here.
//!
//! Decoding never trusts the payload: a payload over [`max_payload`] bytes is
//! refused before it is read, and bincode checks the length prefixes of
//! strings and byte buffers against a limit of at most four times the bytes
//! present before it allocates them. A collection decoded through serde
//! (`Vec<T>`, maps) is different: serde pre-allocates from the claimed
//! length, capped by its own `size_hint::cautious` at 1 MiB per collection,
//! before decoding fails on the missing bytes. So a hostile record of a few
//! bytes can cost up to about 1 MiB per collection in the argument types for
//! the moment it is decoded, never more (measured by
//! `reliability/tests/fuzz_corpus.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The default limit on an encoded payload: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

const TAG_BINCODE2: u8 = 1;

static MAX_PAYLOAD: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_PAYLOAD);

/// Why bytes could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The payload is over the size limit.
    #[error("payload of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The payload's size.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The payload is empty: not even a format tag.
    #[error("payload is empty")]
    Empty,
    /// The format tag is not one this version knows.
    #[error("unknown payload format tag {0}")]
    UnknownFormat(u8),
    /// The value could not be serialized.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The bytes do not hold a value of the expected type.
    #[error("cannot decode: {0}")]
    Decode(String),
}

/// The limit on an encoded payload's size, in bytes.
pub fn max_payload() -> usize {
    MAX_PAYLOAD.load(Ordering::Relaxed)
}

/// Sets the limit on an encoded payload's size for this process: enqueues over
/// it fail, and stored payloads over it go to `dead` undecoded.
pub fn set_max_payload(bytes: usize) {
    MAX_PAYLOAD.store(bytes, Ordering::Relaxed);
}

/// Checks a payload size against [`max_payload`].
pub fn check_size(size: usize) -> Result<(), CodecError> {
    let limit = max_payload();
    if size > limit {
        return Err(CodecError::TooLarge { size, limit });
    }
    Ok(())
}

/// Encodes `value`, refusing results over [`max_payload`].
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut bytes = vec![TAG_BINCODE2];
    bincode::serde::encode_into_std_write(value, &mut bytes, bincode::config::standard())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    check_size(bytes.len())?;
    Ok(bytes)
}

/// Whether `bytes` encodes a value that carries nothing, such as `()`.
pub fn is_unit(bytes: &[u8]) -> bool {
    bytes == [TAG_BINCODE2]
}

/// Decodes a `T` from `bytes`, refusing payloads over [`max_payload`],
/// unknown tags, bad data and trailing bytes. Never panics.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    check_size(bytes.len())?;
    let (&tag, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    match tag {
        TAG_BINCODE2 => decode_bincode2(body),
        other => Err(CodecError::UnknownFormat(other)),
    }
}

/// bincode checks each length prefix only against its configured limit, which
/// is a type parameter. The limit picked is the smallest power of four at or
/// above the payload's size, so no string or buffer prefix can make it
/// allocate more than four times the bytes it was given (serde's own
/// pre-allocation of collections is capped apart, at 1 MiB each).
fn decode_bincode2<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    macro_rules! tiers {
        ($($limit:literal)*) => {
            $(if body.len() <= $limit {
                return finish(bincode::serde::decode_from_slice(
                    body,
                    bincode::config::standard().with_limit::<$limit>(),
                ), body.len());
            })*
        };
    }
    tiers!(1024 4096 16384 65536 262144 1048576 4194304 16777216 67108864 268435456 1073741824 4294967296);
    Err(CodecError::TooLarge {
        size: body.len() + 1,
        limit: 1 << 32,
    })
}

fn finish<T>(
    decoded: Result<(T, usize), bincode::error::DecodeError>,
    len: usize,
) -> Result<T, CodecError> {
    match decoded {
        Ok((value, read)) if read == len => Ok(value),
        Ok((_, read)) => Err(CodecError::Decode(format!(
            "{} trailing bytes after the value",
            len - read
        ))),
        Err(e) => Err(CodecError::Decode(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_tuple() {
        let bytes = encode(&(7u64, "hi".to_owned(), vec![1u8, 2, 3])).unwrap();
        assert_eq!(bytes[0], TAG_BINCODE2);
        let back: (u64, String, Vec<u8>) = decode(&bytes).unwrap();
        assert_eq!(back, (7, "hi".to_owned(), vec![1, 2, 3]));
    }

    #[test]
    fn unit_is_recognised() {
        assert!(is_unit(&encode(&()).unwrap()));
        assert!(!is_unit(&encode(&0u8).unwrap()));
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // tag, then a varint length prefix of u64::MAX for a String
        let bytes = [TAG_BINCODE2, 253, 255, 255, 255, 255, 255, 255, 255, 255];
        let err = decode::<String>(&bytes).unwrap_err();
        assert!(matches!(err, CodecError::Decode(_)), "{err:?}");
        let err = decode::<Vec<u64>>(&bytes).unwrap_err();
        assert!(matches!(err, CodecError::Decode(_)), "{err:?}");
    }

    #[test]
    fn wrong_type_and_trailing_bytes_are_errors() {
        let bytes = encode(&(1u8, 2u8)).unwrap();
        assert!(matches!(decode::<u8>(&bytes), Err(CodecError::Decode(_))));
        let bytes = encode(&"text").unwrap();
        assert!(matches!(
            decode::<(u64, u64, u64)>(&bytes),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn empty_and_unknown_tags_are_errors() {
        assert_eq!(decode::<u8>(&[]), Err(CodecError::Empty));
        assert_eq!(decode::<u8>(&[9, 0]), Err(CodecError::UnknownFormat(9)));
    }

    #[test]
    fn oversized_payloads_are_refused_both_ways() {
        let big = vec![0u8; DEFAULT_MAX_PAYLOAD + 1];
        assert!(matches!(encode(&big), Err(CodecError::TooLarge { .. })));
        let mut bytes = vec![TAG_BINCODE2];
        bytes.resize(DEFAULT_MAX_PAYLOAD + 1, 0);
        assert!(matches!(
            decode::<Vec<u8>>(&bytes),
            Err(CodecError::TooLarge { .. })
        ));
    }
}

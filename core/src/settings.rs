//! Process-wide settings: the default backend, backends by URL, eager mode.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use crate::backend::url::hide_password;
use crate::{BaseQueue, Error, MemoryQueue};

static DEFAULT_BACKEND: OnceLock<Arc<dyn BaseQueue>> = OnceLock::new();

/// Sets the backend that annotated functions enqueue onto. Call it once, at
/// start-up; a second call is [`Error::DefaultBackendAlreadySet`].
pub fn set_default_backend(backend: Arc<dyn BaseQueue>) -> Result<(), Error> {
    DEFAULT_BACKEND
        .set(backend)
        .map_err(|_| Error::DefaultBackendAlreadySet)
}

/// The default backend: the one set with [`set_default_backend`], or else the one
/// `OUTBAND_URL` opens (opened once, on first use). With neither,
/// [`Error::NoDefaultBackend`].
pub fn default_backend() -> Result<&'static Arc<dyn BaseQueue>, Error> {
    if let Some(backend) = DEFAULT_BACKEND.get() {
        return Ok(backend);
    }
    let url = std::env::var("OUTBAND_URL").map_err(|_| Error::NoDefaultBackend)?;
    let backend = open(&url)?;
    // Another thread may have won the race; either way one backend is kept.
    let _ = DEFAULT_BACKEND.set(backend);
    DEFAULT_BACKEND.get().ok_or(Error::NoDefaultBackend)
}

/// The default backend if it is set or opened already: never connects.
pub(crate) fn default_backend_if_set() -> Option<&'static Arc<dyn BaseQueue>> {
    DEFAULT_BACKEND.get()
}

/// A backend's entry for [`open`]: the URL scheme it serves and how it opens
/// a URL. Backend crates register one with [`register_scheme!`](crate::register_scheme).
#[derive(Debug)]
pub struct Opener {
    /// The scheme, without `://`: `redis`, `postgres`, `sqlite`, …
    pub scheme: &'static str,
    /// Opens a URL of that scheme.
    pub open: fn(&str) -> Result<Arc<dyn BaseQueue>, Error>,
}

inventory::collect!(Opener);

/// Registers a backend's URL scheme, so that [`open`](crate::open),
/// `OUTBAND_URL` and the daemon's `--url` open its URLs in any program that
/// links the crate (see the linking rule in the crate docs). Takes the
/// scheme, without `://`, and a `fn(&str) -> Result<Arc<dyn BaseQueue>,
/// Error>`.
///
/// ```
/// use std::sync::Arc;
/// use outband::{BaseQueue, MemoryQueue};
///
/// fn open_mine(_url: &str) -> Result<Arc<dyn BaseQueue>, outband::Error> {
///     Ok(Arc::new(MemoryQueue::new()))
/// }
///
/// outband::register_scheme!("mine", open_mine);
///
/// # fn main() -> Result<(), outband::Error> {
/// let backend = outband::open("mine://anything")?;
/// assert_eq!(backend.len("default")?, 0);
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! register_scheme {
    ($scheme:expr, $open:expr $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::Opener { scheme: $scheme, open: $open }
        }
    };
}

fn open_memory(_url: &str) -> Result<Arc<dyn BaseQueue>, Error> {
    Ok(Arc::new(MemoryQueue::new()))
}

inventory::submit! { Opener { scheme: "memory", open: open_memory } }

/// Opens a backend by URL, with whichever linked backend serves its scheme:
/// `memory://` (a new [`MemoryQueue`]) here, others from backend crates.
///
/// A URL it cannot open is [`Error::Config`] (not a URL) or
/// [`Error::UnsupportedUrl`] (no backend for its scheme); both show the URL
/// with its password hidden.
pub fn open(url: &str) -> Result<Arc<dyn BaseQueue>, Error> {
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme)
        .ok_or_else(|| {
            Error::Config(format!(
                "`{}` is not a URL (expected scheme://…)",
                hide_password(url)
            ))
        })?;
    let openers: Vec<&Opener> = inventory::iter::<Opener>.into_iter().collect();
    match openers.iter().find(|o| o.scheme == scheme) {
        Some(opener) => (opener.open)(url),
        None => {
            let mut known: Vec<String> =
                openers.iter().map(|o| format!("{}://", o.scheme)).collect();
            known.sort_unstable();
            Err(Error::UnsupportedUrl {
                url: hide_password(url),
                known,
            })
        }
    }
}

const EAGER_UNSET: u8 = 0;
const EAGER_OFF: u8 = 1;
const EAGER_ON: u8 = 2;

static EAGER: AtomicU8 = AtomicU8::new(EAGER_UNSET);

/// Turns eager mode on or off for this process (djutils' `QUEUE_ALWAYS_EAGER`).
///
/// In eager mode, calling an annotated function (or its `schedule`) runs the
/// command inline through the same encoding a consumer uses, and returns an
/// id that names no stored job; a failure is [`Error::CommandFailed`].
/// `enqueue_on`, which names its queue, still enqueues.
pub fn set_eager(eager: bool) {
    EAGER.store(if eager { EAGER_ON } else { EAGER_OFF }, Ordering::SeqCst);
}

/// Whether eager mode is on: set by [`set_eager`], or else by
/// `OUTBAND_EAGER=1` (or `true`) in the environment.
pub fn is_eager() -> bool {
    match EAGER.load(Ordering::SeqCst) {
        EAGER_ON => true,
        EAGER_OFF => false,
        _ => {
            let on = std::env::var("OUTBAND_EAGER")
                .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
            let _ = EAGER.compare_exchange(
                EAGER_UNSET,
                if on { EAGER_ON } else { EAGER_OFF },
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            EAGER.load(Ordering::SeqCst) == EAGER_ON
        }
    }
}

/// Cancels job `id` on the [default backend](default_backend), recording
/// `reason`: a pending job ends `cancelled` at once, a running one when its
/// consumer stops it, within a heartbeat; a finished one is left as it is.
/// See [`BaseQueue::cancel`] for the rules, and [`Cancellation`](crate::Cancellation) for the
/// answer. `id` may be a [`JobHandle`](crate::JobHandle), which
/// [`JobHandle::cancel`](crate::JobHandle::cancel) also cancels on the
/// backend its job went to.
///
/// # Errors
///
/// [`Error::NoDefaultBackend`] when no default backend is set, or the
/// backend's error.
pub fn cancel(id: impl Into<crate::JobId>, reason: &str) -> Result<crate::Cancellation, Error> {
    default_backend()?.cancel(id.into(), reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_open_nothing_do_not_show_their_password() {
        for url in [
            "postgress://user:s3cret@h:1/db",
            "user:s3cret@h:1/db",
            "redis:/user:s3cret@h:1/db",
            "nope://:ab/cd@s3cret@h/",
        ] {
            let Err(error) = open(url) else {
                panic!("{url} opened");
            };
            for message in [error.to_string(), format!("{error:?}")] {
                assert!(!message.contains("s3cret"), "{message}");
                assert!(message.contains("***@h"), "{message}");
            }
        }
    }
}

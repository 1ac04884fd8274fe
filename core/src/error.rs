//! The one error type of outband.

use crate::codec::CodecError;

/// A boxed error from a backend's driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong in outband.
///
/// Each variant says whether trying the same call again may succeed; see
/// [`Error::is_retryable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A decorated function was called with no default backend: neither
    /// [`set_default_backend`](crate::set_default_backend) nor `OUTBAND_URL`.
    /// Not retryable: configure one at start-up.
    #[error(
        "no default backend: call outband::set_default_backend at start-up, or set OUTBAND_URL (for example sqlite://outband.db)"
    )]
    NoDefaultBackend,

    /// [`set_default_backend`](crate::set_default_backend) was called a second time.
    #[error("the default backend is already set; it is set once, at start-up")]
    DefaultBackendAlreadySet,

    /// A URL names a scheme no linked backend opens. Not retryable.
    #[error("no backend opens `{url}`: known schemes are {}", known.join(", "))]
    UnsupportedUrl {
        /// The URL, with its password hidden
        /// ([`hide_password`](crate::backend::url::hide_password)): this
        /// error is meant to be shown.
        url: String,
        /// The schemes of the backends linked into this program.
        known: Vec<String>,
    },

    /// A URL or a setting is malformed. Not retryable.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Arguments or a result could not be encoded or decoded. Not retryable:
    /// the same bytes fail the same way.
    #[error(transparent)]
    Codec(#[from] CodecError),

    /// A job names a command this program does not have. Retryable on another
    /// consumer, which may run newer code.
    #[error("unknown command `{name}`; known commands: {}", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
    UnknownCommand {
        /// The name in the job.
        name: String,
        /// The names this program registered.
        known: Vec<String>,
    },

    /// Two commands were registered under one name. Not retryable: rename one
    /// with `#[queue_command(name = "…")]`.
    #[error("command `{name}` is registered twice: at {first} and at {second}")]
    DuplicateCommand {
        /// The name.
        name: String,
        /// Where the first one is defined.
        first: String,
        /// Where the second one is defined.
        second: String,
    },

    /// A job that no backend would store (empty names, no attempts, …). Not
    /// retryable.
    #[error("invalid job: {0}")]
    InvalidJob(String),

    /// In eager mode, the command ran inline and failed. Not retryable here.
    #[error("command `{command}` failed: {error}")]
    CommandFailed {
        /// The command's name.
        command: String,
        /// Its error or panic message.
        error: String,
    },

    /// The backend could not be reached or the connection dropped. Retryable:
    /// the backend may come back.
    #[error("backend unavailable: {0}")]
    Unavailable(#[source] BoxError),

    /// The backend refused or failed the operation. Not retryable as it is.
    #[error("backend error: {0}")]
    Backend(#[source] BoxError),
}

impl Error {
    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::UnknownCommand { .. })
    }

    /// A [`Error::Backend`] from any error.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        Self::Backend(error.into())
    }

    /// A [`Error::Unavailable`] from any error.
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }
}

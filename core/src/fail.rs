//! What a command's error means for its job: [`Fail`].

use std::fmt;
use std::time::Duration;

/// An error a command returns to decide what becomes of its job, where
/// any other error type is an ordinary failed attempt.
///
/// A command whose return type is `Result<T, Fail>` (or an alias of it)
/// chooses per error:
///
/// | constructor | the job |
/// |---|---|
/// | [`Fail::retry`], or `?` on any [`std::error::Error`] | a failed attempt: retried after the command's `backoff` while attempts are left, then `dead` |
/// | [`Fail::retry_after`] | a failed attempt, retried after the given delay instead of the backoff, while attempts are left |
/// | [`Fail::fatal`] | `dead` at once with the error, whatever attempts are left: Sidekiq's `JobRetry::Skip`, River's `JobCancel`, Oban's `{:discard, …}` |
///
/// The error's text is the job's `last_error` either way. In eager mode
/// every `Fail` is the call's [`Error::CommandFailed`](crate::Error::CommandFailed).
///
/// ```
/// use std::time::Duration;
/// use outband::{Fail, queue_command};
///
/// #[queue_command(retries = 5, backoff = "exponential(10s, 1h)")]
/// fn charge(order: u64, cents: i64) -> Result<(), Fail> {
///     if cents <= 0 {
///         // no attempt can succeed: dead now, not five retries later
///         return Err(Fail::fatal(format!("order {order}: amount {cents} is not positive")));
///     }
///     let reply = std::fs::read_to_string("/dev/null")?; // an io::Error is retried
///     if reply.contains("429") {
///         return Err(Fail::retry_after(Duration::from_secs(60), "rate limited"));
///     }
///     Ok(())
/// }
/// # fn main() {
/// # assert!(charge::call(1, 0).unwrap_err().is_fatal());
/// # assert!(charge::call(1, 5).is_ok());
/// # }
/// ```
pub struct Fail {
    message: String,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Retry,
    RetryAfter(Duration),
    Fatal,
}

impl Fail {
    /// An ordinary failed attempt: retried after the command's backoff
    /// while attempts are left, as any other error type is.
    pub fn retry(error: impl fmt::Display) -> Self {
        Self::new(error, Kind::Retry)
    }

    /// A failed attempt retried after `delay`, in place of the command's
    /// backoff (a rate limit's `Retry-After`, say). The attempt counts:
    /// after the last one the job is `dead`.
    pub fn retry_after(delay: Duration, error: impl fmt::Display) -> Self {
        Self::new(error, Kind::RetryAfter(delay))
    }

    /// A final error: the job goes to `dead` at once, with attempts left or
    /// not, for errors that no retry can mend (invalid input, a record that
    /// no longer exists). A dead job can still be retried by hand.
    pub fn fatal(error: impl fmt::Display) -> Self {
        Self::new(error, Kind::Fatal)
    }

    fn new(error: impl fmt::Display, kind: Kind) -> Self {
        Self {
            message: error.to_string(),
            kind,
        }
    }

    /// The error's text, recorded as the job's `last_error`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the job goes to `dead` at once.
    pub fn is_fatal(&self) -> bool {
        self.kind == Kind::Fatal
    }

    /// The delay asked for by [`retry_after`](Self::retry_after), if any.
    pub fn retry_delay(&self) -> Option<Duration> {
        match self.kind {
            Kind::RetryAfter(delay) => Some(delay),
            Kind::Retry | Kind::Fatal => None,
        }
    }

    /// What a consumer makes of it.
    pub(crate) fn to_run_error(&self) -> crate::registry::RunError {
        use crate::registry::RunError;
        let message = self.message.clone();
        match self.kind {
            Kind::Retry => RunError::Failed(message),
            Kind::RetryAfter(delay) => RunError::RetryAfter(message, delay),
            Kind::Fatal => RunError::Fatal(message),
        }
    }
}

/// `?` on any error makes an ordinary failed attempt. `Fail` itself is not
/// a [`std::error::Error`], as `anyhow::Error` is not, so that this
/// conversion can cover every error type.
impl<E: std::error::Error> From<E> for Fail {
    fn from(error: E) -> Self {
        Self::retry(error)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Fail");
        debug.field("message", &self.message);
        match self.kind {
            Kind::Retry => debug.field("kind", &"retry"),
            Kind::RetryAfter(delay) => debug.field("retry_after", &delay),
            Kind::Fatal => debug.field("kind", &"fatal"),
        };
        debug.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RunError;

    #[test]
    fn each_constructor_keeps_its_message_and_meaning() {
        let fatal = Fail::fatal("no such order");
        assert!(fatal.is_fatal());
        assert_eq!(
            (fatal.message(), fatal.retry_delay()),
            ("no such order", None)
        );
        assert!(matches!(fatal.to_run_error(), RunError::Fatal(m) if m == "no such order"));

        let later = Fail::retry_after(Duration::from_secs(7), "busy");
        assert!(!later.is_fatal());
        assert_eq!(later.retry_delay(), Some(Duration::from_secs(7)));
        assert!(matches!(
            later.to_run_error(),
            RunError::RetryAfter(m, d) if m == "busy" && d == Duration::from_secs(7)
        ));

        let plain = Fail::retry(42);
        assert_eq!(plain.to_string(), "42");
        assert!(matches!(plain.to_run_error(), RunError::Failed(m) if m == "42"));
    }

    #[test]
    fn question_mark_on_a_std_error_is_an_ordinary_failure() {
        fn parse(text: &str) -> Result<u32, Fail> {
            Ok(text.parse::<u32>()?)
        }
        let error = parse("x").unwrap_err();
        assert!(!error.is_fatal());
        assert_eq!(error.retry_delay(), None);
        assert_eq!(error.message(), "invalid digit found in string");
    }
}

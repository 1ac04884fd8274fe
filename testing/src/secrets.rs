//! The search of the backends' secrets tests: URLs carrying a password go
//! through a backend, and no error, log line, panic or `Debug` of what they
//! lead to may show the password.

use std::fmt::{Debug, Display};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{capture_logs, log_lines};

/// In every password of [`urls`], so a message that shows a password, as
/// written in the URL or percent-decoded, shows this.
pub const MARK: &str = "hunter2XYZZY";

/// Each of `urls` with `{pw}` replaced by each password: one plain, one
/// percent-encoded (the form a password with `/`, `@`, `:` must take).
pub fn urls(urls: &[&str]) -> Vec<String> {
    let plain = format!("{MARK}-pw");
    let encoded = format!("{MARK}%2F%40%3A%3F%23%25");
    [plain, encoded]
        .iter()
        .flat_map(|password| urls.iter().map(|url| url.replace("{pw}", password)))
        .collect()
}

/// The `host:port` of `url`, without any user or password.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host.to_owned()
}

/// Adds `error` to `messages`, as shown (`Display`) and as debugged.
pub fn record(messages: &mut Vec<String>, what: &str, error: &(impl Display + Debug)) {
    messages.push(format!("{what}: {error}"));
    messages.push(format!("{what}: {error:?}"));
}

/// The messages `calls` adds; a panic in them is one more message.
pub fn caught(calls: impl FnOnce(&mut Vec<String>)) -> Vec<String> {
    let mut messages = Vec::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| calls(&mut messages)));
    if let Err(payload) = outcome {
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        messages.push(format!("panic: {text}"));
    }
    messages
}

/// Runs `messages_of` on every URL, with the log captured, and fails naming
/// each message or log line that shows [`MARK`], and each URL that led to
/// no message but those starting with `quiet` (a `Debug` of a handle that
/// opened): such a URL failed nowhere, so it would prove nothing.
#[track_caller]
pub fn check(urls: &[String], quiet: &str, messages_of: impl Fn(&str) -> Vec<String>) {
    capture_logs();
    let mut leaks = Vec::new();
    let mut silent = Vec::new();
    for url in urls {
        let messages = messages_of(url);
        if messages.iter().all(|m| m.starts_with(quiet)) {
            silent.push(url.clone());
        }
        for message in messages.iter().chain(&log_lines()) {
            if message.contains(MARK) {
                leaks.push(format!("{url}\n    -> {message}"));
            }
        }
    }
    leaks.dedup();
    assert!(
        leaks.is_empty(),
        "{} messages show a password:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    assert!(
        silent.is_empty(),
        "these URLs led to no error, so they test nothing: {silent:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_carries_the_mark_in_both_forms() {
        let urls = urls(&["redis://u:{pw}@h:1/0"]);
        assert_eq!(urls.len(), 2);
        assert!(urls.iter().all(|url| url.contains(MARK)));
        assert!(urls[1].contains("%2F%40"));
    }

    #[test]
    fn host_of_drops_user_and_password() {
        assert_eq!(host_of("redis://u:p@h:1/0?x=1"), "h:1");
        assert_eq!(host_of("h:2"), "h:2");
    }

    #[test]
    #[should_panic(expected = "1 messages show a password")]
    fn check_fails_on_a_message_with_the_mark() {
        check(&[format!("x://{MARK}")], "debug: ", |url| {
            vec![format!("error: {url}")]
        });
    }

    #[test]
    #[should_panic(expected = "led to no error")]
    fn check_fails_on_a_url_that_failed_nowhere() {
        check(&["x://h".to_owned()], "debug: ", |_| {
            vec!["debug: opened".to_owned()]
        });
    }

    #[test]
    fn a_panic_is_a_message() {
        let messages = caught(|messages| {
            messages.push("first".to_owned());
            panic!("second");
        });
        assert_eq!(messages, ["first", "panic: second"]);
    }
}

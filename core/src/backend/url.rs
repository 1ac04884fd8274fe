//! A backend's URL: the query parameters outband reads, taken out before the
//! rest reaches the driver, and the URL and the driver's messages made fit to
//! show, with every password hidden.
//!
//! A URL reaches error messages and log lines, and those reach people and
//! log stores that must not learn its password. A backend shows a URL only as
//! [`hide_password`] gives it, and passes a driver's message through
//! [`scrub_password`] before the message becomes an [`Error`], since drivers
//! quote the URL, or a piece of it, when they cannot parse it.
//!
//! A password is the user info's text after its first `:`, up to the *last*
//! `@` (so a password with an unencoded `/`, `?`, `#` or `@`, which makes the
//! URL malformed, is hidden whole), and the value of a `pass` or `…password`
//! query parameter (Unix socket and libpq URLs).
//!
//! ```
//! use outband::backend::url::{hide_password, scrub_password, take_params, whole_number};
//!
//! let url = "redis://app:s3cr/t@cache:6379/0?namespace=billing&retention=60&protocol=resp3";
//! let (rest, params) = take_params(url, &["namespace", "retention"]);
//! assert_eq!(rest, "redis://app:s3cr/t@cache:6379/0?protocol=resp3");
//! assert_eq!(params, [("namespace", "billing"), ("retention", "60")]);
//! assert_eq!(whole_number(url, "retention", "60")?, 60);
//!
//! assert_eq!(
//!     hide_password(url),
//!     "redis://app:***@cache:6379/0?namespace=billing&retention=60&protocol=resp3"
//! );
//! assert_eq!(
//!     hide_password("redis+unix:///run/redis.sock?db=2&pass=s3cr/t"),
//!     "redis+unix:///run/redis.sock?db=2&pass=***"
//! );
//!
//! let message = r#"invalid port number: "s3cr/t@cache:6379""#;
//! assert_eq!(scrub_password(message, url), r#"invalid port number: "***@cache:6379""#);
//! # Ok::<(), outband::Error>(())
//! ```

use std::ops::Range;

use crate::Error;

/// Splits `url` into the URL its driver gets and the query parameters named
/// in `names`, as `(name, value)` pairs in the order they appear.
///
/// The query starts at the first `?`; its other parameters stay in the URL in
/// their order, and a URL left with none loses its `?`. Values are taken as
/// written, not percent-decoded.
pub fn take_params<'u>(url: &'u str, names: &[&str]) -> (String, Vec<(&'u str, &'u str)>) {
    let Some((address, query)) = url.split_once('?') else {
        return (url.to_owned(), Vec::new());
    };
    let mut taken = Vec::new();
    let mut passed = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if names.contains(&name) {
            taken.push((name, value));
        } else {
            passed.push(pair);
        }
    }
    let rest = if passed.is_empty() {
        address.to_owned()
    } else {
        format!("{address}?{}", passed.join("&"))
    };
    (rest, taken)
}

/// The value of query parameter `name` of `url` as a whole number, or an
/// [`Error::Config`] that names the parameter and shows the URL with its
/// password hidden (not the value alone: in a malformed URL it may be a piece
/// of the password).
pub fn whole_number(url: &str, name: &str, value: &str) -> Result<u64, Error> {
    value.parse().map_err(|_| {
        Error::Config(format!(
            "cannot use `{}`: `{name}` must be a whole number",
            hide_password(url)
        ))
    })
}

/// `url` fit to show in an error or a log line: each password replaced by
/// `***` (see the [module docs](self) for what a password is). The user name,
/// host, path and the other query parameters stay, to help find a mistake; a
/// URL with an `@` in its query may lose a little more than its password.
pub fn hide_password(url: &str) -> String {
    let mut shown = String::with_capacity(url.len());
    let mut at = 0;
    for span in password_spans(url) {
        shown.push_str(&url[at..span.start]);
        shown.push_str("***");
        at = span.end;
    }
    shown.push_str(&url[at..]);
    shown
}

/// `message` with every password of `url` replaced by `***`: as written in
/// the URL, percent-decoded, and each piece of it between the characters a
/// driver may have cut it at (`/ ? # @ : & %`), when that piece is at least
/// four characters long. For messages of a driver that was handed the URL.
pub fn scrub_password(message: &str, url: &str) -> String {
    let mut secrets: Vec<String> = Vec::new();
    for span in password_spans(url) {
        let raw = &url[span];
        for form in [
            raw.to_owned(),
            percent_decode(raw),
            percent_decode(&raw.replace('+', " ")),
        ] {
            let pieces: Vec<String> = form
                .split([
                    '/',
                    '?',
                    '#',
                    '@',
                    ':',
                    '&',
                    '%',
                    char::REPLACEMENT_CHARACTER,
                ])
                .filter(|piece| piece.chars().count() >= 4)
                .map(str::to_owned)
                .collect();
            secrets.push(form);
            secrets.extend(pieces);
        }
    }
    secrets.retain(|secret| !secret.is_empty());
    // the longest first, so that a piece does not break up a whole
    secrets.sort_unstable_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.dedup();
    let mut scrubbed = message.to_owned();
    for secret in &secrets {
        if scrubbed.contains(secret.as_str()) {
            scrubbed = scrubbed.replace(secret.as_str(), "***");
        }
    }
    scrubbed
}

/// The byte ranges of `url` that hold a password, sorted and disjoint.
fn password_spans(url: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    // after `scheme://`; a URL without it is searched from its start, so that
    // `redis:user:pw@host` and `user:pw@host` lose their password too
    let start = url
        .find("://")
        .filter(|&end| is_scheme(&url[..end]))
        .map_or(0, |end| end + 3);
    if let Some(at) = url[start..].rfind('@').map(|at| start + at) {
        let user_info = &url[start..at];
        if let Some(colon) = user_info.find(':') {
            // a user name with `/ ? # & =` is the end of a path or a query
            // rather than a user: what follows its last such character is
            // hidden as well
            let user = &user_info[..colon];
            let from = user
                .rfind(['/', '?', '#', '&', '='])
                .map_or(colon + 1, |cut| cut + 1);
            spans.push(start + from..at);
        }
    }
    if let Some(question) = url[start..].find('?').map(|q| start + q + 1) {
        // pairs with no `=` after a password's pair are taken for pieces of
        // it, cut at an unencoded `&`; a `#` is part of the value
        let mut open: Option<Range<usize>> = None;
        let mut from = question;
        for pair in url[question..].split('&') {
            let range = from..from + pair.len();
            from = range.end + 1;
            match pair.split_once('=') {
                Some((name, _)) if is_password_param(name) => {
                    spans.extend(open.take());
                    open = Some(range.start + name.len() + 1..range.end);
                }
                Some(_) => spans.extend(open.take()),
                None => {
                    if let Some(open) = &mut open {
                        open.end = range.end;
                    }
                }
            }
        }
        spans.extend(open);
    }
    spans.sort_unstable_by_key(|span| span.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// Whether `text` is a URL scheme: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Whether a query parameter named `name` holds a password: `pass`,
/// `password`, `sslpassword`, … in any case.
fn is_password_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "pass" || name.ends_with("password")
}

/// `text` with its `%XX` escapes decoded; a `%` not followed by two hex
/// digits stays, and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_taken_out() {
        let (rest, taken) = take_params(
            "redis://:pw@h:1/3?namespace=app&protocol=resp3&retention=0&dead_cap=5",
            &["namespace", "retention", "dead_cap"],
        );
        assert_eq!(rest, "redis://:pw@h:1/3?protocol=resp3");
        assert_eq!(
            taken,
            [("namespace", "app"), ("retention", "0"), ("dead_cap", "5")]
        );
        let (rest, taken) = take_params("sqlite::memory:?prefix=t_", &["prefix"]);
        assert_eq!(
            (rest.as_str(), taken),
            ("sqlite::memory:", vec![("prefix", "t_")])
        );
        let (rest, taken) = take_params("sqlite://q.db", &["prefix"]);
        assert_eq!((rest.as_str(), taken), ("sqlite://q.db", vec![]));
        let (rest, taken) = take_params("postgres://h/db?&retention&x=1", &["retention"]);
        assert_eq!(
            (rest.as_str(), taken),
            ("postgres://h/db?x=1", vec![("retention", "")])
        );
    }

    #[test]
    fn numbers_are_checked_without_showing_the_password() {
        let url = "redis://u:secret@h/?retention=soon";
        assert_eq!(whole_number(url, "retention", "60").ok(), Some(60));
        let error = whole_number(url, "retention", "soon")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`redis://u:***@h/?retention=soon`"),
            "{error}"
        );
        assert!(
            error.contains("`retention` must be a whole number"),
            "{error}"
        );
        assert!(whole_number(url, "retention", "-1").is_err());
    }

    #[test]
    fn passwords_are_hidden() {
        for (url, shown) in [
            ("redis://u:secret@h:6379/0", "redis://u:***@h:6379/0"),
            (
                "redis://:secret@h/?namespace=a",
                "redis://:***@h/?namespace=a",
            ),
            ("redis://u@h:6379/0", "redis://u@h:6379/0"),
            (
                "redis://h:6379/0?retention=x",
                "redis://h:6379/0?retention=x",
            ),
            (
                "redis+cluster://u:s@a:1,b:2/",
                "redis+cluster://u:***@a:1,b:2/",
            ),
            ("postgres://u:@h/db", "postgres://u:***@h/db"),
            // unencoded `/ ? # @ :` and bad escapes in a password
            ("redis://u:se/cr@et@h:1/0", "redis://u:***@h:1/0"),
            ("redis://:a?b#c@h:1/", "redis://:***@h:1/"),
            (
                "postgres://u:ab/cd@h:1/db?retention=x",
                "postgres://u:***@h:1/db?retention=x",
            ),
            ("mysql://u:a:b%zz%FF@h/db", "mysql://u:***@h/db"),
            ("redis://u/x:secret@h", "redis://u/***@h"),
            // no `//`, or no scheme
            ("redis:u:secret@h", "redis:***@h"),
            ("redis:/u:secret@h/0", "redis:***@h/0"),
            ("u:secret@h", "u:***@h"),
            ("postgress://u:secret@h/db", "postgress://u:***@h/db"),
            // query parameters
            (
                "redis+unix:///s.sock?db=x&pass=secret&user=u",
                "redis+unix:///s.sock?db=x&pass=***&user=u",
            ),
            (
                "unix:///s.sock?password=se#cret",
                "unix:///s.sock?password=***",
            ),
            (
                "unix:///s.sock?pass=se&cr&et&db=1",
                "unix:///s.sock?pass=***&db=1",
            ),
            ("unix:///s.sock?pass=a:b@cret", "unix:///s.sock?pass=***"),
            (
                "unix:///s.sock?user=a@b&pass=x",
                "unix:///s.sock?user=a@b&pass=***",
            ),
            (
                "postgres://h/db?sslmode=require&SSLPassword=k&password=p",
                "postgres://h/db?sslmode=require&SSLPassword=***&password=***",
            ),
            ("sqlite://q.db?prefix=a_", "sqlite://q.db?prefix=a_"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("", ""),
        ] {
            assert_eq!(hide_password(url), shown, "{url}");
        }
    }

    #[test]
    fn driver_messages_are_scrubbed() {
        let url = "postgres://u:ab%2Fcd@secret-part@h:1/db?password=q%26uery";
        let message = "\"ab%2Fcd@secret-part\", \"ab/cd@secret-part\", \
                       \"secret-part@h\", \"q&uery\", user u, host h";
        assert_eq!(
            scrub_password(message, url),
            "\"***\", \"***\", \"***@h\", \"***\", user u, host h"
        );
        assert_eq!(
            scrub_password("no password here", "postgres://u@h/db"),
            "no password here"
        );
        assert_eq!(
            scrub_password("pw: x+y, x y", "unix:///s?pass=x+y"),
            "pw: ***, ***"
        );
    }
}

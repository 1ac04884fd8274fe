//! What every page shares: the layout, the forms' hidden fields, links with
//! query strings, and how times and durations read.

use std::time::{Duration, SystemTime};

use maud::{DOCTYPE, Markup, html};

use crate::Shared;
use crate::security::{CSRF_FIELD, Session};

/// The pages of the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Jobs,
    Dead,
    Queues,
    Periodic,
    Consumers,
}

/// A path of the dashboard, under its base path.
pub(crate) fn path(shared: &Shared, path: &str) -> String {
    if path == "/" && !shared.base.is_empty() {
        return shared.base.clone();
    }
    format!("{}{path}", shared.base)
}

/// A path of the dashboard with a query string; pairs with an empty value
/// are left out.
pub(crate) fn link(shared: &Shared, at: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs.iter().filter(|(_, value)| !value.is_empty()) {
        query.append_pair(key, value);
    }
    let query = query.finish();
    if query.is_empty() {
        path(shared, at)
    } else {
        format!("{}?{query}", path(shared, at))
    }
}

/// A whole page: the navigation, an optional note (what the last action
/// did), and `body`.
pub(crate) fn page(
    shared: &Shared,
    nav: Nav,
    title: &str,
    note: Option<&str>,
    body: &Markup,
) -> Markup {
    let item = |at: Nav, href: &str, name: &str| {
        html! { a class=[(at == nav).then_some("here")] href=(path(shared, href)) { (name) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · outband" }
                link rel="stylesheet" href=(path(shared, "/assets/style.css"));
                @if nav == Nav::Overview {
                    script src=(path(shared, "/assets/live.js")) defer {}
                }
            }
            body {
                header {
                    a class="brand" href=(path(shared, "/")) { "outband" }
                    (item(Nav::Overview, "/", "Overview"))
                    (item(Nav::Jobs, "/jobs", "Jobs"))
                    (item(Nav::Dead, "/dead", "Dead letters"))
                    (item(Nav::Queues, "/queues", "Queues"))
                    (item(Nav::Periodic, "/periodic", "Periodic"))
                    (item(Nav::Consumers, "/consumers", "Consumers"))
                    @if shared.read_only {
                        span class="mode" { "read-only" }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(note) = note {
                        p class="note" { (note) }
                    }
                    (body)
                }
            }
        }
    }
}

/// The hidden fields of every form that changes something: the CSRF token.
pub(crate) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

/// A time as UTC, to the second.
pub(crate) fn time(at: SystemTime) -> String {
    let at: chrono::DateTime<chrono::Utc> = at.into();
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// How long ago `at` was, from `now`, to the second: `3 s ago`.
pub(crate) fn ago(at: SystemTime, now: SystemTime) -> String {
    let seconds = now.duration_since(at).unwrap_or_default().as_secs();
    match seconds {
        0..120 => format!("{seconds} s ago"),
        120..7200 => format!("{} min ago", seconds / 60),
        _ => format!("{} h ago", seconds / 3600),
    }
}

/// A duration in milliseconds, or `-`.
pub(crate) fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0),
    )
}

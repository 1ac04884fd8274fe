//! No error, log line, panic or `Debug` shows a URL's password: bad URLs
//! carrying a password go through [`DatabaseQueue::open`], the builder and
//! [`outband::open`], and every message is searched for the password, as
//! written in the URL and decoded. The PostgreSQL and MySQL cases need their
//! features; the cases that fail before any driver is reached need none.

mod common;

use std::time::Duration;

use outband::BaseQueue;
use outband_diesel::DatabaseQueue;
use outband_testkit::secrets::{self, record};

/// A call that reaches the database, in case a URL opened after all.
fn exercise(backend: &dyn BaseQueue, messages: &mut Vec<String>) {
    if let Err(error) = backend.stats("secrets") {
        record(messages, "stats", &error);
    }
    if let Err(error) = backend.wait(&["secrets".to_owned()], Duration::from_millis(10)) {
        record(messages, "wait", &error);
    }
    if let Err(error) = backend.wait_finished(outband::JobId(1), Duration::from_millis(10)) {
        record(messages, "wait_finished", &error);
    }
    if let Err(error) = backend.cancel_feed() {
        record(messages, "cancel_feed", &error);
    }
}

/// Every message `url` leads to, through `DatabaseQueue::open`, the builder
/// and `outband::open`; a panic is a message too, and so is `Debug` (these
/// start with `debug: `).
fn messages_of(url: &str) -> Vec<String> {
    secrets::caught(|messages| {
        match DatabaseQueue::open(url) {
            Ok(queue) => {
                messages.push(format!("debug: {queue:?}"));
                exercise(&queue, messages);
            }
            Err(error) => record(messages, "open", &error),
        }
        let builder = DatabaseQueue::builder(url)
            .connect_timeout(Duration::from_secs(2))
            .prefix(common::unique_prefix())
            .temporary(true);
        messages.push(format!("debug: {builder:?}"));
        match builder.open() {
            Ok(queue) => messages.push(format!("debug: {queue:?}")),
            Err(error) => record(messages, "builder", &error),
        }
        match outband::open(url) {
            Ok(queue) => exercise(&*queue, messages),
            Err(error) => record(messages, "outband::open", &error),
        }
    })
}

/// Runs every case through [`secrets::check`].
fn check(urls: &[String]) {
    secrets::check(urls, "debug: ", messages_of);
}

/// Settings outband reads from the query are checked before any driver, with
/// or without the backend's feature.
#[test]
fn bad_settings_do_not_show_the_password() {
    check(&secrets::urls(&[
        "postgres://user:{pw}@127.0.0.1:1/db?retention=soon",
        "postgresql://user:{pw}@127.0.0.1:1/db?prefix=p_&retention=-1",
        "mysql://user:{pw}@127.0.0.1:1/db?retention=soon",
        "mariadb://user:{pw}@127.0.0.1:1/db?retention=1.5",
        "sqlite://user:{pw}@/no/such/dir/q.db?retention=soon",
    ]));
}

#[cfg(feature = "postgres")]
#[test]
fn bad_postgres_urls_do_not_show_the_password() {
    check(&secrets::urls(&[
        "postgres://user:{pw}@127.0.0.1:1/db",
        "postgresql://user:{pw}@127.0.0.1:1/db",
        "postgres://:{pw}@127.0.0.1:1/db",
        "postgres://user:{pw}@127.0.0.1:port/db",
        "postgres://user:{pw}@127.0.0.1:99999/db",
        "postgres://user:{pw}@127.0.0.1:1/db?no_such_option=1",
        "postgres://user:{pw}@127.0.0.1:1/db?sslmode=bogus",
        "postgres://user:{pw}@127.0.0.1:1/db?connect_timeout=soon",
        "postgres://user:{pw}@127.0.0.1:1/db?prefix=p_",
        "postgres://user:{pw}@127.0.0.1:1",
    ]));
}

/// The test server refuses these: a user it does not have, or a database it
/// does not have (with a server that trusts local users).
#[cfg(feature = "postgres")]
#[test]
fn a_refused_postgres_password_is_not_shown() {
    let server = secrets::host_of(&common::pg_url());
    let urls: Vec<String> = [
        "postgres://no_such_user:{pw}@SERVER/test",
        "postgres://postgres:{pw}@SERVER/no_such_database",
    ]
    .iter()
    .map(|url| url.replace("SERVER", &server))
    .collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    check(&secrets::urls(&urls));
}

#[cfg(feature = "mysql")]
#[test]
fn bad_mysql_urls_do_not_show_the_password() {
    check(&secrets::urls(&[
        "mysql://user:{pw}@127.0.0.1:1/db",
        "mariadb://user:{pw}@127.0.0.1:1/db",
        "mysql://:{pw}@127.0.0.1:1/db",
        "mysql://user:{pw}@127.0.0.1:port/db",
        "mysql://user:{pw}@127.0.0.1:99999/db",
        "mysql://user:{pw}@127.0.0.1:1/db/extra",
        "mysql://user:{pw}@127.0.0.1:1/db?ssl_mode=bogus",
        "mysql://user:{pw}@127.0.0.1:1/db?database=other",
        "mysql://user:{pw}@127.0.0.1:1/db?unix_socket=/no/such.sock",
        "mysql://user:{pw}@[::1/db",
    ]));
}

/// The test server refuses these: a wrong password, a user it does not have.
#[cfg(feature = "mysql")]
#[test]
fn a_refused_mysql_password_is_not_shown() {
    let server = secrets::host_of(&common::mysql_url());
    let urls: Vec<String> = [
        "mysql://root:{pw}@SERVER/test",
        "mysql://no_such_user:{pw}@SERVER/test",
    ]
    .iter()
    .map(|url| url.replace("SERVER", &server))
    .collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    check(&secrets::urls(&urls));
}

/// Passwords that break the URL's syntax, as a password generator makes them.
#[cfg(all(feature = "postgres", feature = "mysql"))]
#[test]
fn malformed_passwords_are_not_shown() {
    let pw = format!("{}-pw", secrets::MARK);
    let urls: Vec<String> = [
        "postgres://user:ab?cd{pw}@127.0.0.1:1/db",
        "postgres://user:ab#cd{pw}@127.0.0.1:1/db",
        "mysql://user:ab/cd{pw}@127.0.0.1:1/db",
        "mysql://user:ab%zz{pw}@127.0.0.1:1/db",
        "mysql://user:%FF{pw}@127.0.0.1:1/db",
    ]
    .iter()
    .map(|url| url.replace("{pw}", &pw))
    .collect();
    check(&urls);
}

/// Messages of libpq that quote the URL, or a piece of it (a malformed host,
/// a bad percent-encoding, a `/` or `@` in a password), and an unknown
/// scheme, refused by outband-diesel and by `outband::open`.
#[cfg(feature = "postgres")]
#[test]
fn driver_messages_that_quote_the_url_do_not_show_the_password() {
    let pw = format!("{}-pw", secrets::MARK);
    let urls: Vec<String> = [
        "postgres://user:{pw}@[::1/db",
        "postgres://user:ab%zz{pw}@127.0.0.1:1/db",
        "postgres://user:ab/cd{pw}@127.0.0.1:1/db",
        "postgres://user:ab@cd{pw}@127.0.0.1:1/db",
        "postgres://user:ab/cd{pw}@127.0.0.1:1/db?retention=x",
        "postgres://user:ab?cd/{pw}@127.0.0.1:1/db",
        "postgres://user:{pw}@127.0.0.1:1/db?password={pw}",
        "postgres://127.0.0.1:1/db?user=u&password={pw}",
        "postgres://127.0.0.1:1/db?password=ab&cd{pw}&sslmode=bogus",
        "postgress://user:{pw}@127.0.0.1:1/db",
    ]
    .iter()
    .map(|url| url.replace("{pw}", &pw))
    .collect();
    check(&urls);
}

/// `outband::open` with each scheme this crate registers, an unknown one and
/// a URL with no scheme: every refusal hides the password. The schemes whose
/// feature is off are refused by name.
#[test]
fn outband_open_hides_the_password_for_every_scheme() {
    let mut urls = Vec::new();
    for scheme in ["sqlite", "postgres", "postgresql", "mysql", "mariadb"] {
        urls.push(format!(
            "{scheme}://user:{{pw}}@127.0.0.1:1/db?retention=soon"
        ));
        urls.push(format!(
            "{scheme}://user:ab/cd{{pw}}@127.0.0.1:1/db?prefix=no-dashes"
        ));
        #[cfg(all(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        urls.push(format!("{scheme}://user:{{pw}}@127.0.0.1:1/no/such/db"));
    }
    urls.extend(
        [
            "postgress://user:{pw}@127.0.0.1:1/db",
            "postgres:/user:{pw}@127.0.0.1:1/db",
            "postgres:user:{pw}@127.0.0.1:1/db",
            "user:{pw}@127.0.0.1:1/db",
        ]
        .map(str::to_owned),
    );
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    check(&secrets::urls(&urls));
}

/// The URL shown in an error, and by the builder's `Debug`,
/// keeps what helps find the mistake.
#[test]
fn errors_show_the_url_without_its_password() {
    let pw = format!("{}-pw", secrets::MARK);
    let url = format!("postgres://user:{pw}@127.0.0.1:1/db?retention=soon");
    let error = DatabaseQueue::open(&url).expect_err("retention is not a number");
    let message = error.to_string();
    assert!(
        message.contains("`postgres://user:***@127.0.0.1:1/db?retention=soon`"),
        "{message}"
    );
    let shown = format!("{:?}", DatabaseQueue::builder(url.as_str()));
    assert!(
        shown.contains("\"postgres://user:***@127.0.0.1:1/db?retention=soon\""),
        "{shown}"
    );
    let Err(error) = outband::open(&format!("nope://user:{pw}@h/db")) else {
        panic!("no backend opens nope://");
    };
    assert!(
        error.to_string().contains("`nope://user:***@h/db`"),
        "{error}"
    );
}

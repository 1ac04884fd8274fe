//! No error, log line or panic shows a URL's password: bad URLs carrying a
//! password go through [`RedisQueue::connect`] and [`outband::open`], then
//! through the calls that reach the server, and every message is searched
//! for the password, as written in the URL and decoded.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use outband::{BaseQueue, Error, NewJob};
use outband_redis::RedisQueue;
use support::Server;

/// In every password below, so a message that shows any password, raw or
/// decoded, shows this.
const MARK: &str = "hunter2XYZZY";

/// The schemes this crate registers for [`outband::open`].
const SCHEMES: [&str; 6] = [
    "redis",
    "rediss",
    "redis+unix",
    "unix",
    "redis+cluster",
    "rediss+cluster",
];

/// A URL to try and the forms of its password that must not be shown.
struct Case {
    url: String,
    secrets: Vec<String>,
}

impl Case {
    /// `url` with `{pw}` replaced by `password`, which must not be shown
    /// as written nor percent-decoded.
    fn new(url: &str, password: &str) -> Self {
        assert!(password.contains(MARK), "{password}");
        let decoded = percent_decode(password);
        Self {
            url: url.replace("{pw}", password),
            secrets: vec![password.to_owned(), decoded, MARK.to_owned()],
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
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

/// The `host:port` of `REDIS_URL`, without any user or password.
fn test_server() -> String {
    let url = support::redis_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host.to_owned()
}

fn job() -> NewJob {
    NewJob::new("app::secret", outband::codec::encode(&()).expect("encodes")).queue("secrets")
}

fn record(messages: &mut Vec<String>, what: &str, error: &Error) {
    messages.push(format!("{what}: {error}"));
    messages.push(format!("{what}: {error:?}"));
}

/// One call of [`BaseQueue`], its result dropped.
type Call<'a> = dyn Fn() -> Result<(), Error> + 'a;

/// The calls that reach the server, each error recorded, starting with call
/// `first`: only the first call of a fresh handle meets the driver's own
/// error, the next ones meet the reconnection backoff.
fn exercise(backend: &dyn BaseQueue, first: usize, messages: &mut Vec<String>) {
    let lease = Duration::from_secs(30);
    let queues = ["secrets".to_owned()];
    let calls: [(&str, &Call<'_>); 8] = [
        // no outcomes to record: the claim that follows fails and is logged
        ("complete_and_claim", &|| {
            backend
                .complete_and_claim(Vec::new(), "secrets", 1, lease)
                .map(drop)
        }),
        ("enqueue", &|| backend.enqueue(job()).map(drop)),
        ("now", &|| backend.now().map(drop)),
        ("enqueue_many", &|| {
            backend.enqueue_many(vec![job(), job().key("k")]).map(drop)
        }),
        ("claim", &|| backend.claim("secrets", 1, lease).map(drop)),
        ("wait", &|| backend.wait(&queues, Duration::from_millis(10))),
        ("recover_expired", &|| backend.recover_expired().map(drop)),
        ("stats", &|| backend.stats("secrets").map(drop)),
    ];
    for (what, call) in calls.iter().cycle().skip(first).take(calls.len()) {
        if let Err(error) = call() {
            record(messages, what, &error);
        }
    }
}

/// Every message `url` leads to, through `RedisQueue::connect` and
/// `outband::open` (which refuses other schemes itself); a panic is a
/// message too.
fn messages_of(url: &str) -> Vec<String> {
    let mut messages = Vec::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        match RedisQueue::connect(url) {
            Ok(queue) => {
                messages.push(format!("queue: {queue:?}"));
                exercise(&queue, 0, &mut messages);
            }
            Err(error) => record(&mut messages, "connect", &error),
        }
        match outband::open(url) {
            Ok(queue) => exercise(&*queue, 1, &mut messages),
            Err(error) => record(&mut messages, "open", &error),
        }
    }));
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

/// Runs every case; fails naming the messages that show a password, and the
/// cases that failed nowhere (they would prove nothing).
fn check(cases: &[Case]) {
    outband_testkit::capture_logs();
    let mut leaks = Vec::new();
    let mut silent = Vec::new();
    for case in cases {
        let messages = messages_of(&case.url);
        if !messages.iter().any(|m| !m.starts_with("queue: ")) {
            silent.push(case.url.clone());
        }
        for message in messages.iter().chain(&outband_testkit::log_lines()) {
            if case.secrets.iter().any(|s| message.contains(s.as_str())) {
                leaks.push(format!("{}\n    -> {message}", case.url));
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

#[test]
fn malformed_urls_do_not_show_their_password() {
    let pw = format!("{MARK}-pw");
    let encoded = format!("{MARK}%2F%40%3A%3F%23%25");
    let mut cases = Vec::new();
    for password in [pw.as_str(), encoded.as_str()] {
        for url in [
            // the port, the host, the database number
            "redis://user:{pw}@127.0.0.1:99999999/0",
            "redis://user:{pw}@127.0.0.1:port/0",
            "redis://:{pw}@127.0.0.1:-1/",
            "redis://user:{pw}@/0",
            "redis://user:{pw}@[::1/0",
            "redis://user:{pw}@bad host:6379/0",
            "redis://user:{pw}@0.0.0.0:6379/0",
            "redis://user:{pw}@127.0.0.1:1/notanumber",
            "redis://user:{pw}@127.0.0.1:1/0/1",
            // query parameters outband reads, and the driver's
            "redis://user:{pw}@127.0.0.1:1/0?retention=soon",
            "redis://user:{pw}@127.0.0.1:1/0?dead_cap=-1",
            "redis://user:{pw}@127.0.0.1:1/0?namespace=a{b}",
            "redis://user:{pw}@127.0.0.1:1/0?namespace=",
            "redis://user:{pw}@127.0.0.1:1/0?protocol=resp9",
            "redis://user:{pw}@127.0.0.1:1/0?no_such_option=1",
            // schemes
            "http://user:{pw}@127.0.0.1:1/",
            "redis:/user:{pw}@127.0.0.1:1/",
            "redis:user:{pw}@127.0.0.1:1/",
            "rediss://user:{pw}@127.0.0.1:1/",
            "rediss://user:{pw}@127.0.0.1:1/#bogus",
            "rediss://user:{pw}@127.0.0.1:1/0?retention=x",
            // clusters
            "redis+cluster://user:{pw}@/",
            "redis+cluster://user:{pw}@127.0.0.1:port/",
            "redis+cluster://user:{pw}@127.0.0.1:1,127.0.0.1:2/",
            "redis+cluster://user:{pw}@127.0.0.1:1/?retention=x",
            "redis+cluster://user:{pw}@127.0.0.1:1/?namespace={x}",
            "redis+cluster://user:{pw}@0.0.0.0:1/",
            "redis+cluster://user:{pw}@127.0.0.1:1/?protocol=resp9",
            "redis+cluster:user:{pw}@127.0.0.1:1/",
            "rediss+cluster://user:{pw}@127.0.0.1:1/",
            // Unix sockets, whose password is a query parameter
            "redis+unix:///no/such/dir/redis.sock?pass={pw}",
            "redis+unix:///no/such/dir/redis.sock?db=x&pass={pw}",
            "redis+unix:///no/such/dir/redis.sock?pass={pw}&retention=x",
            "redis+unix:///no/such/dir/redis.sock?user=u&password={pw}&namespace=",
            "unix:///no/such/dir/redis.sock?pass={pw}&protocol=resp9",
            "redis+unix://user:{pw}@/no/such/dir/redis.sock",
            "redis+unix://user:{pw}@host/no/such/dir/redis.sock",
            "redis+unix:relative.sock?pass={pw}",
        ] {
            cases.push(Case::new(url, password));
        }
    }
    // passwords that break the URL's syntax, as a password generator makes them
    for url in [
        "redis://:ab/cd{pw}@127.0.0.1:1/0",
        "redis://:ab/cd{pw}==@127.0.0.1:1",
        "redis://:ab?cd{pw}@127.0.0.1:1/0",
        "redis://:ab#cd{pw}@127.0.0.1:1/0",
        "redis://:ab@cd{pw}@127.0.0.1:1/0",
        "redis://user:ab:cd{pw}@127.0.0.1:1/0",
        "redis://user:ab%zz{pw}@127.0.0.1:1/0",
        "redis://user:%FF{pw}@127.0.0.1:1/0",
        "redis://user:{pw}/@127.0.0.1:1/0?retention=x",
        "redis+cluster://:ab/cd{pw}@127.0.0.1:1,127.0.0.1:2/",
        "redis+cluster://:ab?cd{pw}@127.0.0.1:1/",
    ] {
        cases.push(Case::new(url, &pw));
    }
    check(&cases);
}

/// `outband::open` with each scheme this crate registers, an unknown one and
/// URLs with no `//` or no scheme: every refusal hides the password.
#[test]
fn outband_open_hides_the_password_for_every_scheme() {
    let pw = format!("{MARK}-pw");
    let mut urls = Vec::new();
    for scheme in SCHEMES {
        urls.push(format!(
            "{scheme}://user:{{pw}}@127.0.0.1:1/0?retention=soon"
        ));
        urls.push(format!("{scheme}://:ab/cd{{pw}}@127.0.0.1:1/0?dead_cap=x"));
        urls.push(format!("{scheme}://user:{{pw}}@127.0.0.1:1/0?namespace="));
        urls.push(format!(
            "{scheme}:///no/such/dir/redis.sock?pass={{pw}}&retention=x"
        ));
    }
    urls.extend(
        [
            "rediz://user:{pw}@127.0.0.1:1/0",
            "redis:/user:{pw}@127.0.0.1:1/0",
            "redis:user:{pw}@127.0.0.1:1/0",
            "user:{pw}@127.0.0.1:1/0",
            ":{pw}@127.0.0.1:1",
        ]
        .map(str::to_owned),
    );
    let cases: Vec<Case> = urls.iter().map(|url| Case::new(url, &pw)).collect();
    check(&cases);
}

#[test]
fn unreachable_servers_do_not_show_the_password() {
    let pw = format!("{MARK}-pw");
    let cases: Vec<Case> = [
        "redis://user:{pw}@127.0.0.1:1/0",
        "redis://:{pw}@127.0.0.1:1/",
        "redis://user:{pw}@127.0.0.1:1/0?namespace=secrets&retention=60",
        "redis+cluster://user:{pw}@127.0.0.1:1,127.0.0.1:2/",
        "redis+unix:///no/such/dir/redis.sock?pass={pw}",
        "redis+unix:///no/such/dir/redis.sock?db=2&user=u&pass={pw}",
    ]
    .into_iter()
    .map(|url| Case::new(url, &pw))
    .collect();
    check(&cases);
}

/// The test server has no password: AUTH with one fails.
#[test]
fn a_refused_password_is_not_shown() {
    let server = test_server();
    let pw = format!("{MARK}-pw");
    let cases: Vec<Case> = [
        "redis://:{pw}@SERVER/0",
        "redis://someone:{pw}@SERVER/0",
        "redis://someone:{pw}@SERVER/0?namespace=secrets",
        "redis://someone:{pw}@SERVER/99999",
        "redis://default:{pw}@SERVER/0?namespace=",
        "redis://default:{pw}@SERVER/0?protocol=resp9",
        "redis+cluster://someone:{pw}@SERVER/",
        "rediss://someone:{pw}@SERVER/0",
        "rediss+cluster://someone:{pw}@SERVER/",
    ]
    .into_iter()
    .map(|url| Case::new(&url.replace("SERVER", &server), &pw))
    .collect();
    check(&cases);
}

/// A private server that asks for a password: a wrong one, and the right one
/// with a database number the server does not have.
#[test]
fn a_server_with_a_password_does_not_show_it() {
    if !support::have_redis_server() {
        return;
    }
    let right = format!("{MARK}-right");
    let server = Server::start(&["--requirepass", &right, "--appendonly", "no"], false);
    let port = server.port;
    let wrong = format!("{MARK}-wrong");
    let mut cases: Vec<Case> = [
        format!("redis://:{{pw}}@127.0.0.1:{port}/0"),
        format!("redis://default:{{pw}}@127.0.0.1:{port}/0"),
        format!("redis://someone:{{pw}}@127.0.0.1:{port}/0"),
        format!("redis+cluster://default:{{pw}}@127.0.0.1:{port}/"),
    ]
    .iter()
    .map(|url| Case::new(url, &wrong))
    .collect();
    cases.extend(
        [
            format!("redis://:{{pw}}@127.0.0.1:{port}/99999"),
            format!("redis://default:{{pw}}@127.0.0.1:{port}/0?protocol=resp9"),
            format!("redis+cluster://default:{{pw}}@127.0.0.1:{port}/"),
        ]
        .iter()
        .map(|url| Case::new(url, &right)),
    );
    check(&cases);
}

#[cfg(feature = "tls")]
#[test]
fn a_bad_root_certificate_does_not_show_the_password() {
    let pw = format!("{MARK}-pw");
    let mut leaks = Vec::new();
    for url in [
        "rediss://user:{pw}@127.0.0.1:1/0",
        "rediss+cluster://user:{pw}@127.0.0.1:1/",
    ] {
        let url = url.replace("{pw}", &pw);
        let options = outband_redis::RedisOptions::default().tls_root_certificate(b"not a pem");
        let mut messages = Vec::new();
        match RedisQueue::with_options(&url, options) {
            Ok(queue) => exercise(&queue, 2, &mut messages),
            Err(error) => record(&mut messages, "with_options", &error),
        }
        assert!(!messages.is_empty(), "{url} led to no error");
        leaks.extend(messages.into_iter().filter(|m| m.contains(MARK)));
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// The URL shown in an error keeps what helps find the mistake.
#[test]
fn errors_show_the_url_without_its_password() {
    let pw = format!("{MARK}-pw");
    let error = RedisQueue::connect(&format!(
        "redis://user:{pw}@127.0.0.1:6379/0?retention=soon"
    ))
    .expect_err("retention is not a number");
    let message = error.to_string();
    assert!(
        message.contains("redis://user:***@127.0.0.1:6379/0?retention=soon"),
        "{message}"
    );
    let error = RedisQueue::connect(&format!("redis+unix:///no/such.sock?db=x&pass={pw}"))
        .expect_err("db is not a number");
    let message = error.to_string();
    assert!(
        message.contains("redis+unix:///no/such.sock?db=x&pass=***"),
        "{message}"
    );
    let Err(error) = outband::open(&format!("rediz://user:{pw}@h:6379/0")) else {
        panic!("no backend opens rediz://");
    };
    assert!(
        error.to_string().contains("`rediz://user:***@h:6379/0`"),
        "{error}"
    );
}

//! No error, log line or panic shows a URL's password: bad URLs carrying a
//! password go through [`RedisQueue::connect`] and [`outband::open`], then
//! through the calls that reach the server, sync and awaited, and every
//! message is searched for the password, as written in the URL and decoded.

mod support;

use std::time::Duration;

use outband::{BaseQueue, Error, JobId, NewJob};
use outband_redis::RedisQueue;
use outband_testkit::secrets::{self, MARK, record};
use support::Server;

/// The schemes this crate registers for [`outband::open`].
const SCHEMES: [&str; 6] = [
    "redis",
    "rediss",
    "redis+unix",
    "unix",
    "redis+cluster",
    "rediss+cluster",
];

fn job() -> NewJob {
    NewJob::new("app::secret", outband::codec::encode(&()).expect("encodes")).queue("secrets")
}

/// One call of [`BaseQueue`], its result dropped.
type Call<'a> = dyn Fn() -> Result<(), Error> + 'a;

/// The index of the awaited enqueue among [`exercise`]'s calls.
const AWAITED: usize = 8;
/// The index of the awaited wait for a job's end, which has connections of
/// its own.
const AWAITED_WAIT: usize = AWAITED + 2;
/// The index of the opening of a cancel feed, whose connection is its own.
const CANCEL_FEED: usize = AWAITED_WAIT + 1;
/// The calls a fresh handle starts with, to meet the driver's errors on
/// each kind of connection the sync pool does not open.
const FRESH_FIRST: [usize; 3] = [AWAITED, AWAITED_WAIT, CANCEL_FEED];

/// The calls that reach the server, each error recorded, starting with call
/// `first`: only the first call of a fresh handle meets the driver's own
/// error, the next ones meet the reconnection backoff (which the awaited
/// enqueue's connection shares).
fn exercise(backend: &dyn BaseQueue, first: usize, messages: &mut Vec<String>) {
    let lease = Duration::from_secs(30);
    let queues = ["secrets".to_owned()];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let calls: [(&str, &Call<'_>); CANCEL_FEED + 1] = [
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
        ("enqueue_many_async", &|| {
            let native = backend.as_async().expect("a native async enqueue");
            runtime
                .block_on(native.enqueue_many_async(vec![job(), job().key("k")]))
                .map(drop)
        }),
        ("wait_finished", &|| {
            backend.wait_finished(JobId(1), Duration::from_millis(10))
        }),
        ("wait_finished_async", &|| {
            let native = backend.as_async().expect("a native async enqueue");
            let wait = native
                .wait_finished_async(JobId(1), Duration::from_millis(10))
                .expect("an awaited wait");
            runtime.block_on(wait)
        }),
        ("cancel_feed", &|| backend.cancel_feed().map(drop)),
    ];
    for (what, call) in calls.iter().cycle().skip(first).take(calls.len()) {
        if let Err(error) = call() {
            record(messages, what, &error);
        }
    }
}

/// Every message `url` leads to, through `RedisQueue::connect` and
/// `outband::open` (which refuses other schemes itself), and through fresh
/// handles whose first call is awaited; a panic is a message too.
fn messages_of(url: &str) -> Vec<String> {
    secrets::caught(|messages| {
        match RedisQueue::connect(url) {
            Ok(queue) => {
                messages.push(format!("queue: {queue:?}"));
                exercise(&queue, 0, messages);
                for first in FRESH_FIRST {
                    let fresh = RedisQueue::connect(url).expect("connected once");
                    exercise(&fresh, first, messages);
                }
            }
            Err(error) => record(messages, "connect", &error),
        }
        match outband::open(url) {
            Ok(queue) => exercise(&*queue, 1, messages),
            Err(error) => record(messages, "open", &error),
        }
    })
}

/// Runs every case through [`secrets::check`].
fn check(urls: &[String]) {
    secrets::check(urls, "queue: ", messages_of);
}

#[test]
fn malformed_urls_do_not_show_their_password() {
    let mut cases = secrets::urls(&[
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
    ]);
    let pw = format!("{MARK}-pw");
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
        cases.push(url.replace("{pw}", &pw));
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
    let cases: Vec<String> = urls.iter().map(|url| url.replace("{pw}", &pw)).collect();
    check(&cases);
}

#[test]
fn unreachable_servers_do_not_show_the_password() {
    let pw = format!("{MARK}-pw");
    let cases: Vec<String> = [
        "redis://user:{pw}@127.0.0.1:1/0",
        "redis://:{pw}@127.0.0.1:1/",
        "redis://user:{pw}@127.0.0.1:1/0?namespace=secrets&retention=60",
        "redis+cluster://user:{pw}@127.0.0.1:1,127.0.0.1:2/",
        "redis+unix:///no/such/dir/redis.sock?pass={pw}",
        "redis+unix:///no/such/dir/redis.sock?db=2&user=u&pass={pw}",
    ]
    .into_iter()
    .map(|url| url.replace("{pw}", &pw))
    .collect();
    check(&cases);
}

/// The test server has no password: AUTH with one fails.
#[test]
fn a_refused_password_is_not_shown() {
    let server = secrets::host_of(&support::redis_url());
    let pw = format!("{MARK}-pw");
    let cases: Vec<String> = [
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
    .map(|url| url.replace("SERVER", &server).replace("{pw}", &pw))
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
    let mut cases: Vec<String> = [
        format!("redis://:{{pw}}@127.0.0.1:{port}/0"),
        format!("redis://default:{{pw}}@127.0.0.1:{port}/0"),
        format!("redis://someone:{{pw}}@127.0.0.1:{port}/0"),
        format!("redis+cluster://default:{{pw}}@127.0.0.1:{port}/"),
    ]
    .iter()
    .map(|url| url.replace("{pw}", &wrong))
    .collect();
    cases.extend(
        [
            format!("redis://:{{pw}}@127.0.0.1:{port}/99999"),
            format!("redis://default:{{pw}}@127.0.0.1:{port}/0?protocol=resp9"),
            format!("redis+cluster://default:{{pw}}@127.0.0.1:{port}/"),
        ]
        .iter()
        .map(|url| url.replace("{pw}", &right)),
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
        match RedisQueue::with_options(&url, options.clone()) {
            Ok(queue) => {
                exercise(&queue, 2, &mut messages);
                for first in FRESH_FIRST {
                    let fresh =
                        RedisQueue::with_options(&url, options.clone()).expect("opened once");
                    exercise(&fresh, first, &mut messages);
                }
            }
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

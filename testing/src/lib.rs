//! What outband's tests share: the test servers' URLs, skipping (or failing)
//! when a server is missing, names no other test uses, waiting for a
//! condition, free ports, a private `redis-server`, captured log lines and the
//! password search of the backends' secrets tests ([`secrets`]).
//!
//! The servers are those of `.env.sample`: [`redis_url`], [`pg_url`] and
//! [`mysql_url`] read `REDIS_URL`, `PG_DATABASE_URL` and `MYSQL_DATABASE_URL`
//! and fall back to its local defaults. A test whose server is unreachable
//! skips itself with a printed notice, unless `OUTBAND_REQUIRE_SERVERS=1`
//! (as CI sets; see [`servers_required`]), which makes it fail instead.
//!
//! ```
//! use std::time::Duration;
//!
//! use outband_testkit::{skip_or_fail, unique_name, wait_until, with_param};
//!
//! // a table prefix or a Redis namespace of this test's own
//! let namespace = unique_name("doc");
//! let url = with_param(&outband_testkit::redis_url(), "namespace", &namespace);
//! assert!(url.ends_with(&format!("?namespace={namespace}")));
//!
//! // what a test does when its server does not answer
//! let connected: Result<(), &str> = Err("connection refused");
//! if let Err(error) = connected {
//!     if !outband_testkit::servers_required() {
//!         let skipped: Option<()> = skip_or_fail("Redis at redis://127.0.0.1:1/", &error);
//!         assert!(skipped.is_none());
//!     }
//! }
//!
//! let mut polls = 0;
//! wait_until("the third poll", Duration::from_secs(5), || {
//!     polls += 1;
//!     polls == 3
//! });
//! wait_until("the condition holds", None, || true);
//! ```
//!
//! This crate is not published: only the workspace's tests, examples' tests
//! and reliability suite depend on it.

pub mod secrets;

use std::fmt::Display;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `REDIS_URL`'s local default, as in `.env.sample`.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";
/// `PG_DATABASE_URL`'s local default, as in `.env.sample`.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// `MYSQL_DATABASE_URL`'s local default, as in `.env.sample`.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// How long [`wait_until`] waits when no timeout is given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// `REDIS_URL`, or the local default of `.env.sample`.
pub fn redis_url() -> String {
    env_or("REDIS_URL", DEFAULT_REDIS_URL)
}

/// `PG_DATABASE_URL`, or the local default of `.env.sample`.
pub fn pg_url() -> String {
    env_or("PG_DATABASE_URL", DEFAULT_PG_URL)
}

/// `MYSQL_DATABASE_URL`, or the local default of `.env.sample`.
pub fn mysql_url() -> String {
    env_or("MYSQL_DATABASE_URL", DEFAULT_MYSQL_URL)
}

fn env_or(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// Whether a missing server fails the test instead of skipping it:
/// `OUTBAND_REQUIRE_SERVERS` is `1` (as CI sets) or `true`.
pub fn servers_required() -> bool {
    std::env::var("OUTBAND_REQUIRE_SERVERS").is_ok_and(|v| v == "1" || v == "true")
}

/// What a test does when `what` is missing: `None` after a notice on
/// standard error, or, when [`servers_required`], a panic.
#[track_caller]
pub fn skip<T>(what: &str) -> Option<T> {
    assert!(!servers_required(), "{what}, and OUTBAND_REQUIRE_SERVERS=1");
    eprintln!("notice: skipped, {what}; set OUTBAND_REQUIRE_SERVERS=1 to fail instead");
    None
}

/// What a test does when `server` (`"Redis at …"`, a database URL) is
/// unreachable with `error`: [`skip`]s, so `None` after a notice, or a panic
/// when servers are required.
#[track_caller]
pub fn skip_or_fail<T>(server: &str, error: &dyn Display) -> Option<T> {
    skip(&format!("{server} is unreachable ({error})"))
}

/// Waits until `done` holds, polling it every 20 ms; panics once `timeout`
/// (`None`: [`DEFAULT_WAIT`]) has passed, which only guards against a hang.
#[track_caller]
pub fn wait_until(what: &str, timeout: impl Into<Option<Duration>>, done: impl FnMut() -> bool) {
    poll_until(what, timeout, Duration::from_millis(20), done);
}

/// [`wait_until`], polling `done` every `every`: for a test whose condition
/// also drives what it waits for, so that how often it runs matters.
#[track_caller]
pub fn poll_until(
    what: &str,
    timeout: impl Into<Option<Duration>>,
    every: Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout.into().unwrap_or(DEFAULT_WAIT);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(every);
    }
}

/// A name no other test of this or any other run uses: `prefix`, the
/// process id, a counter and a random number, joined by `_`.
///
/// It holds only `prefix`'s characters, digits and `_`, so with such a
/// prefix it is a valid Redis namespace and, once `_` is appended, a valid
/// table prefix. It is short: `prefix` and, for a process id of up to seven
/// digits and a counter below 1,000, at most 16 more characters
/// (outband-diesel takes table prefixes of up to 21).
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}_{}_{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u16(..)
    )
}

/// `base` with `name=value` added to its query.
pub fn with_param(base: &str, name: &str, value: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{name}={value}")
}

/// A TCP port on loopback that nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A free port on loopback whose Redis Cluster bus port, 10,000 higher, is
/// free too, when checked: either may be taken by another process (an
/// outgoing connection's ephemeral port) before the server binds them.
pub fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Whether `program` runs here (`program --version` succeeds).
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `program` is [`installed`]; `false` after a [`skip`] notice, or
/// a panic when servers are required.
#[track_caller]
pub fn have_program(program: &str) -> bool {
    installed(program) || skip::<()>(&format!("{program} is not installed")).is_some()
}

/// The process id in `pidfile`, if it holds one.
pub fn pid_in(pidfile: &Path) -> Option<u32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

/// Sends `signal` (`-9`, `-TERM`, …) to process `pid` with `kill`; panics
/// if that fails.
#[track_caller]
pub fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// Kills (`SIGKILL`) the process named in each of `pidfiles` that names
/// one, ignoring failures: what a test does on drop with the daemons it
/// started, which may have exited already.
pub fn kill_daemons<P: AsRef<Path>>(pidfiles: impl IntoIterator<Item = P>) {
    for pidfile in pidfiles {
        if let Some(pid) = pid_in(pidfile.as_ref()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// A private `redis-server` on a free loopback port, in a temporary
/// directory; killed (and the directory removed) on drop, also when the test
/// panics.
///
/// It runs with `--save ""` and the arguments it was started with, which
/// come after the defaults and so override them: `--appendonly yes` for a
/// server whose acknowledged writes survive a `SIGKILL` (the AOF is written
/// before a command is answered).
#[derive(Debug)]
pub struct PrivateRedis {
    port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server with `args` and waits until it answers; `None` (after
    /// a notice) when `redis-server` is not installed, a panic instead when
    /// servers are required.
    #[track_caller]
    pub fn start(args: &[&str]) -> Option<Self> {
        Self::start_on(args, free_port())
    }

    /// [`start`](Self::start) on a port whose cluster bus port is free too,
    /// for a node of a Redis Cluster (`--cluster-enabled yes`).
    #[track_caller]
    pub fn start_cluster_node(args: &[&str]) -> Option<Self> {
        Self::start_on(args, free_cluster_port())
    }

    #[track_caller]
    fn start_on(args: &[&str], port: u16) -> Option<Self> {
        if !have_program("redis-server") {
            return None;
        }
        let mut server = Self {
            port,
            dir: tempfile::tempdir().expect("a temporary directory"),
            args: args.iter().map(|&a| a.to_owned()).collect(),
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// Its TCP port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, with no password and database 0.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its temporary directory, its working directory too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server with `SIGKILL`: it writes nothing more.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again, after a [`kill`](Self::kill) if it runs) on
    /// the same port, directory and arguments, and waits until it answers,
    /// having loaded what it had persisted.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", ""])
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        wait_until(
            &format!("redis-server on {} answers", self.port),
            Duration::from_secs(30),
            || answers(address),
        );
    }
}

/// Whether the Redis at `address` answers `PING`: with `PONG`, or by asking
/// for a password, since a server that does so is up too.
fn answers(address: SocketAddr) -> bool {
    let timeout = Duration::from_millis(200);
    let Ok(mut stream) = TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = String::new();
    let _ = BufReader::new(stream).read_line(&mut reply);
    reply.starts_with("+PONG") || reply.starts_with("-NOAUTH")
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The log lines of the calling test binary, captured once
/// [`capture_logs`] installed the capturing logger.
struct Capture(std::sync::Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));

/// Installs a logger that keeps every line of this test binary, at every
/// level, for [`log_lines`]; later calls do nothing. Panics if the binary
/// installed another logger.
pub fn capture_logs() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Every line logged since [`capture_logs`], as `LEVEL target: message`.
pub fn log_lines() -> Vec<String> {
    CAPTURE
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_fit_a_table_prefix() {
        let (a, b) = (unique_name("ex"), unique_name("ex"));
        assert_ne!(a, b);
        assert!(a.starts_with("ex"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert!(a.len() <= "ex".len() + 16, "{a}");
    }

    #[test]
    fn with_param_starts_or_extends_the_query() {
        assert_eq!(with_param("redis://h/", "a", "1"), "redis://h/?a=1");
        assert_eq!(with_param("redis://h/?a=1", "b", "2"), "redis://h/?a=1&b=2");
    }

    #[test]
    #[should_panic(expected = "timed out waiting until never")]
    fn wait_until_panics_after_its_timeout() {
        wait_until("never", Duration::from_millis(50), || false);
    }

    #[test]
    fn a_private_redis_answers_survives_a_restart_and_goes_on_drop() {
        let Some(mut server) = PrivateRedis::start(&["--appendonly", "yes"]) else {
            return;
        };
        let address = SocketAddr::from(([127, 0, 0, 1], server.port()));
        assert!(answers(address));
        server.kill();
        assert!(!answers(address));
        server.restart();
        assert!(answers(address));
        drop(server);
        assert!(!answers(address));
    }
}

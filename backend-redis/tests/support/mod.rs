//! What the integration tests share: the test server's URL, a namespace per
//! test that is deleted afterwards, and private `redis-server` processes.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use outband::BaseQueue;
use outband_redis::{RedisOptions, RedisQueue};

/// `REDIS_URL`, or the default of `.env.sample`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// Whether a missing server fails the test (`OUTBAND_REQUIRE_SERVERS=1`).
pub fn servers_required() -> bool {
    std::env::var("OUTBAND_REQUIRE_SERVERS").is_ok_and(|v| v == "1" || v == "true")
}

/// A namespace no other test or run uses.
pub fn namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "outband-test-{}-{}-{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    )
}

/// A queue on the test server in a namespace of its own, deleted on drop; or
/// `None`, with a notice, when the server is unreachable and not required.
pub fn test_queue(options: RedisOptions) -> Option<Scoped> {
    let url = redis_url();
    let namespace = namespace();
    let queue = RedisQueue::with_options(&url, options.namespace(namespace.clone()))
        .expect("REDIS_URL is a valid URL");
    match queue.now() {
        Ok(_) => Some(Scoped {
            queue: Arc::new(queue),
            namespace,
        }),
        Err(error) if !servers_required() => {
            eprintln!(
                "notice: skipped, Redis at {url} is unreachable ({error}); set OUTBAND_REQUIRE_SERVERS=1 to fail instead"
            );
            None
        }
        Err(error) => panic!("Redis at {url} is unreachable: {error}"),
    }
}

/// A queue whose namespace is deleted when it is dropped.
pub struct Scoped {
    pub queue: Arc<RedisQueue>,
    pub namespace: String,
}

impl Drop for Scoped {
    fn drop(&mut self) {
        delete_namespace(&self.queue, &self.namespace);
    }
}

/// For `outband::conformance_tests!`: the queue, with the namespace deleted
/// once the test ends.
impl outband::test_suite::Fixture for Scoped {
    fn open(self) -> Option<(Arc<dyn BaseQueue>, Box<dyn std::any::Any>)> {
        let queue: Arc<dyn BaseQueue> = self.queue.clone();
        Some((queue, Box::new(self)))
    }
}

/// Deletes every key of a namespace (on one server).
pub fn delete_namespace(queue: &RedisQueue, namespace: &str) {
    let _ = outband_redis::delete_namespace(queue, namespace);
}

/// A TCP port on loopback that nothing listens on now (and, with `bus`, whose
/// cluster bus port, 10,000 higher, is free too).
pub fn free_port(bus: bool) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        if !bus {
            return port;
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Whether `redis-server` can be run here.
pub fn have_redis_server() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if servers_required() {
            panic!("redis-server is not installed");
        }
        eprintln!("notice: skipped, redis-server is not installed");
    }
    found
}

/// A private `redis-server` in a temporary directory, killed (and its
/// directory removed) on drop, also when the test panics.
pub struct Server {
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// Starts a server on a free port with `args` added to the defaults.
    pub fn start(args: &[&str], cluster_bus: bool) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "outband-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = Self {
            port: free_port(cluster_bus),
            dir,
            args: args.iter().map(|&a| a.to_owned()).collect(),
            child: None,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        self.wait_until_up();
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = redis::Client::open(self.url()).expect("url");
        loop {
            let ready = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
            // a server that asks for a password is up too
            if ready.is_ok() || ready.is_err_and(|e| e.code() == Some("NOAUTH")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: no chance to flush anything more).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

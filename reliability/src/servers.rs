//! The backends the scenarios run on: queues of their own on the shared test
//! servers, and private servers that a scenario may stop and start.
//!
//! **Shared servers.** [`open`] gives a scenario a queue that no other test
//! sees: a fresh SQLite file, a table prefix of its own on the PostgreSQL at
//! `PG_DATABASE_URL` and the MariaDB/MySQL at `MYSQL_DATABASE_URL` (dropped
//! with the queue), or a namespace of its own on the Redis at `REDIS_URL`
//! (deleted on drop). The defaults are those of `.env.sample`. A server that
//! cannot be reached skips the scenario with a printed notice, unless
//! `OUTBAND_REQUIRE_SERVERS=1` (as CI sets), which fails it.
//!
//! **Private servers.** The shared servers are never restarted. A scenario
//! that needs a server to go down starts its own on a free loopback port in a
//! temporary directory: [`PrivateRedis`] (`redis-server` on `PATH`, from
//! `outband_testkit`), [`PrivatePostgres`] (`initdb` and `pg_ctl` from `/usr/lib/postgresql/*/bin`,
//! run as `nobody` when the test runs as root, since PostgreSQL refuses root)
//! and [`PrivateMariadb`] (`mariadb-install-db` and `mariadbd`; MariaDB runs
//! as root with `--user=root`). Each is stopped and its directory removed on
//! drop, also when the test panics. Missing binaries skip the scenario with a
//! notice, or fail it under `OUTBAND_REQUIRE_SERVERS=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::{BaseQueue, Error};
use outband_diesel::DatabaseQueue;
use outband_redis::{RedisOptions, RedisQueue};
pub use outband_testkit::PrivateRedis;
use outband_testkit::{
    free_port, installed, mysql_url, pg_url, redis_url, skip, skip_or_fail, unique_name, wait_until,
};

/// The backends every scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `outband-diesel` on a SQLite file.
    Sqlite,
    /// `outband-diesel` on PostgreSQL.
    Postgres,
    /// `outband-diesel` on MariaDB (or MySQL).
    Mysql,
    /// `outband-redis`.
    Redis,
}

impl Backend {
    /// Every backend.
    pub const ALL: [Backend; 4] = [Self::Sqlite, Self::Postgres, Self::Mysql, Self::Redis];

    /// The backend's name in summary lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mariadb",
            Self::Redis => "redis",
        }
    }

    /// A small number, distinct per backend, for scenarios that keep values
    /// of several backends apart in one process.
    pub fn index(self) -> u64 {
        match self {
            Self::Sqlite => 0,
            Self::Postgres => 1,
            Self::Mysql => 2,
            Self::Redis => 3,
        }
    }
}

/// Where a [`TestQueue`] keeps its records, for writing under the contract.
#[derive(Clone, Debug)]
pub enum Store {
    /// `outband-diesel`: the tables `<prefix>jobs` and `<prefix>ticks`.
    Sql {
        /// What diesel connects to: a file path for SQLite, the URL otherwise.
        url: String,
        /// The table prefix.
        prefix: String,
    },
    /// `outband-redis`: the keys of one namespace.
    Redis {
        /// The backend, for its raw connections.
        backend: Arc<RedisQueue>,
        /// The namespace.
        namespace: String,
    },
}

/// A queue of one scenario's own on one backend; its tables, namespace or
/// file go when it is dropped (once every other handle is gone too).
pub struct TestQueue {
    /// Which backend.
    pub kind: Backend,
    /// The backend.
    pub backend: Arc<dyn BaseQueue>,
    /// Its storage.
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestQueue")
            .field("kind", &self.kind)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        if let Store::Redis { backend, namespace } = &self.store {
            let _ = outband_redis::delete_namespace(backend, namespace);
        }
    }
}

/// A queue of its own on `backend`'s shared test server (or a new SQLite
/// file); `None`, after a notice, when the server is unreachable and servers
/// are not required.
pub fn open(kind: Backend) -> Option<TestQueue> {
    match kind {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let path = dir.path().join("jobs.db").display().to_string();
            let backend = DatabaseQueue::builder(format!("sqlite://{path}"))
                .open()
                .expect("open a SQLite file");
            Some(TestQueue {
                kind,
                backend: Arc::new(backend),
                store: Store::Sql {
                    url: path,
                    prefix: "outband_".to_owned(),
                },
                _dir: Some(dir),
            })
        }
        Backend::Postgres | Backend::Mysql => {
            let url = if kind == Backend::Postgres {
                pg_url()
            } else {
                mysql_url()
            };
            let prefix = format!("{}_", unique_name("r"));
            let opened = DatabaseQueue::builder(url.as_str())
                .prefix(prefix.as_str())
                .temporary(true)
                .open();
            match opened {
                Ok(queue) => Some(TestQueue {
                    kind,
                    backend: Arc::new(queue),
                    store: Store::Sql { url, prefix },
                    _dir: None,
                }),
                Err(error @ Error::Unavailable(_)) => skip_or_fail(&url, &error),
                Err(error) => panic!("cannot open {url}: {error}"),
            }
        }
        Backend::Redis => {
            let url = redis_url();
            let namespace = unique_name("outband-rel-");
            let backend = RedisQueue::with_options(
                &url,
                RedisOptions::default().namespace(namespace.as_str()),
            )
            .expect("REDIS_URL is a valid URL");
            if let Err(error) = backend.now() {
                return skip_or_fail(&format!("Redis at {url}"), &error);
            }
            let backend = Arc::new(backend);
            Some(TestQueue {
                kind,
                backend: backend.clone(),
                store: Store::Redis { backend, namespace },
                _dir: None,
            })
        }
    }
}

/// Runs `program` with `args`, as `nobody` when `as_nobody`; panics with its
/// output when it fails.
fn run_checked(program: &Path, args: &[&str], as_nobody: bool) {
    let mut command = if as_nobody {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let output = command.args(args).output().expect("runs");
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A private PostgreSQL cluster (`initdb`, then `pg_ctl`) on a free port, in
/// a temporary directory; stopped at once and removed on drop.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_nobody: bool,
    running: bool,
}

impl PrivatePostgres {
    /// Creates and starts the cluster; `None` (after a notice) when no
    /// PostgreSQL binaries are installed and servers are not required.
    pub fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                dirs.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                    .find(|bin| bin.join("initdb").exists())
            });
        let Some(bin) = bin else {
            return skip("no PostgreSQL binaries in /usr/lib/postgresql/*/bin");
        };
        let as_nobody = is_root();
        let dir = std::env::temp_dir().join(unique_name("outband-rel-pg-"));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        if as_nobody {
            run_checked(
                Path::new("chown"),
                &["nobody", dir.to_str().expect("utf-8")],
                false,
            );
        }
        let mut server = Self {
            bin,
            dir,
            port: free_port(),
            as_nobody,
            running: false,
        };
        let data = server.data();
        run_checked(
            &server.bin.join("initdb"),
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            as_nobody,
        );
        server.start_again();
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let log = self.dir.join("log").display().to_string();
        let mut all = vec!["-D", &data, "-l", &log, "-w"];
        all.extend_from_slice(args);
        run_checked(&self.bin.join("pg_ctl"), &all, self.as_nobody);
    }

    /// Stops the server: `fast` (clients are disconnected, the server shuts
    /// down cleanly) or `immediate` (like a crash: recovery on next start).
    pub fn stop(&mut self, mode: &str) {
        self.pg_ctl(&["-m", mode, "stop"]);
        self.running = false;
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_again(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&["-o", &options, "start"]);
        self.running = true;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            // a failed assertion must not hide behind a second panic
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.pg_ctl(&["-m", "immediate", "stop"]);
            }));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private MariaDB server (`mariadb-install-db`, then `mariadbd`) on a free
/// port, in a temporary directory, with a `test` database; killed and removed
/// on drop.
#[derive(Debug)]
pub struct PrivateMariadb {
    server: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PrivateMariadb {
    /// Creates and starts the server; `None` (after a notice) when MariaDB's
    /// binaries are not installed and servers are not required.
    pub fn start() -> Option<Self> {
        let server = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let (Some(server), true) = (server, installed("mariadb-install-db")) else {
            return skip("mariadbd or mariadb-install-db is not installed");
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data").display().to_string();
        run_checked(
            Path::new("mariadb-install-db"),
            &[
                "--no-defaults",
                &format!("--datadir={data}"),
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            false,
        );
        let mut server = Self {
            server,
            dir,
            port: free_port(),
            child: None,
        };
        server.start_again();
        let mut admin = mysql_admin(&server.url_of("mysql"));
        diesel::RunQueryDsl::execute(diesel::sql_query("CREATE DATABASE test"), &mut admin)
            .expect("create the test database");
        Some(server)
    }

    fn url_of(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// The URL of its `test` database.
    pub fn url(&self) -> String {
        self.url_of("test")
    }

    /// Stops the server with `SIGTERM` (a clean shutdown) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let give_up = Instant::now() + Duration::from_secs(60);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port and data, and waits until
    /// it accepts connections.
    pub fn start_again(&mut self) {
        self.stop();
        let data = self.dir.path().join("data");
        let child = Command::new(&self.server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--user=root", "--skip-log-bin"])
            .args(["--innodb-buffer-pool-size=32M", "--skip-name-resolve"])
            .arg(format!(
                "--log-error={}",
                self.dir.path().join("log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let url = self.url_of("mysql");
        wait_until("mariadbd has started", Duration::from_secs(60), || {
            <diesel::MysqlConnection as diesel::Connection>::establish(&url).is_ok()
        });
    }
}

fn mysql_admin(url: &str) -> diesel::MysqlConnection {
    <diesel::MysqlConnection as diesel::Connection>::establish(url).expect("connect to mariadbd")
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

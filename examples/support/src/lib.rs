//! What the examples' tests share: the backend an example runs on in a test,
//! isolated from every other test, or a skip with a notice when its server
//! is missing (a failure instead under `OUTBAND_REQUIRE_SERVERS=1`, as CI
//! sets).
//!
//! ```
//! use example_support::{Backend, Target};
//!
//! let Some(target) = Target::new(Backend::SqliteDefault, "doc") else { return };
//! let mut command = std::process::Command::new("true");
//! target.apply(&mut command); // OUTBAND_URL unset: ./outband.db
//! assert!(target.url().is_none());
//! ```

use std::process::Command;

use outband::BaseQueue;
#[cfg(feature = "postgres")]
use outband_testkit::pg_url;
use outband_testkit::{redis_url, skip_or_fail, unique_name, with_param};

/// Where an example's test runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `OUTBAND_URL` unset: the SQLite file `outband.db` in the working
    /// directory, as a new user runs the example.
    SqliteDefault,
    /// `REDIS_URL` (default `redis://127.0.0.1:6379/`) with a namespace of
    /// the test's own, deleted at the end.
    Redis,
    /// `PG_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
    /// with a table prefix of the test's own, whose tables are dropped at
    /// the end.
    #[cfg(feature = "postgres")]
    Postgres,
}

/// A backend for one test: its URL, and what removes its data at the end.
pub struct Target {
    url: Option<String>,
    cleanup: Cleanup,
}

/// What a target removes when it is dropped.
enum Cleanup {
    Nothing,
    RedisNamespace(Box<outband_redis::RedisQueue>, String),
    /// Holds the temporary tables until the end.
    #[cfg(feature = "postgres")]
    Tables(#[allow(dead_code)] outband_diesel::DatabaseQueue),
}

impl Target {
    /// The target on `backend` for the test named `test`, or `None` after a
    /// notice when its server is unreachable and not required.
    pub fn new(backend: Backend, test: &str) -> Option<Self> {
        eprintln!("{test}: on {backend:?}");
        // short: a table prefix has at most 21 characters
        let name = format!("{}_", unique_name("ex"));
        match backend {
            Backend::SqliteDefault => Some(Self {
                url: None,
                cleanup: Cleanup::Nothing,
            }),
            Backend::Redis => {
                let base = redis_url();
                let url = with_param(&base, "namespace", &name);
                let backend = outband_redis::RedisQueue::connect(&url).expect("a valid URL");
                if let Err(error) = backend.now() {
                    return skip_or_fail(&format!("Redis at {base}"), &error);
                }
                Some(Self {
                    url: Some(url),
                    cleanup: Cleanup::RedisNamespace(Box::new(backend), name),
                })
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let base = pg_url();
                // temporary: the tables go when the last handle does
                let opened = outband_diesel::DatabaseQueue::builder(base.clone())
                    .prefix(name.clone())
                    .temporary(true)
                    .open();
                match opened {
                    Ok(queue) => Some(Self {
                        url: Some(with_param(&base, "prefix", &name)),
                        cleanup: Cleanup::Tables(queue),
                    }),
                    Err(error @ outband::Error::Unavailable(_)) => skip_or_fail(&base, &error),
                    Err(error) => panic!("cannot open {base}: {error}"),
                }
            }
        }
    }

    /// The URL, or `None` for the SQLite default.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Sets `OUTBAND_URL` on `command` to the target's URL, or removes it.
    pub fn apply(&self, command: &mut Command) {
        match &self.url {
            Some(url) => command.env("OUTBAND_URL", url),
            None => command.env_remove("OUTBAND_URL"),
        };
    }

    /// Runs the example binary `bin` as a new user runs it: in an empty
    /// directory, with `OUTBAND_URL` set by [`apply`](Self::apply). Panics,
    /// with its output, unless it succeeds; returns what it printed, and the
    /// directory it ran in.
    pub fn run_example(&self, bin: &str) -> ExampleRun {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut command = Command::new(bin);
        command.current_dir(dir.path());
        self.apply(&mut command);
        let out = command.output().expect("the example starts");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ExampleRun { stdout, dir }
    }
}

/// What [`Target::run_example`] left: the example's standard output and the
/// directory it ran in (deleted when this is dropped).
#[derive(Debug)]
pub struct ExampleRun {
    /// What the example printed.
    pub stdout: String,
    /// The directory it ran in.
    pub dir: tempfile::TempDir,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Cleanup::RedisNamespace(queue, namespace) = &self.cleanup
            && let Err(error) = outband_redis::delete_namespace(queue, namespace)
        {
            eprintln!("could not delete the Redis namespace {namespace}: {error}");
        }
    }
}

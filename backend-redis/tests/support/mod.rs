//! What the integration tests share besides `outband_testkit`: a queue on
//! the test server in a namespace of its own, deleted afterwards.

#![allow(dead_code, unreachable_pub)]

pub mod limits;

use std::sync::Arc;

use outband::BaseQueue;
use outband_redis::{RedisOptions, RedisQueue};
pub use outband_testkit::redis_url;
use outband_testkit::{PrivateRedis, skip_or_fail, unique_name};

/// A queue on the test server in a namespace of its own, deleted on drop; or
/// `None`, with a notice, when the server is unreachable and not required.
pub fn test_queue(options: RedisOptions) -> Option<Scoped> {
    let url = redis_url();
    let namespace = unique_name("outband-test-");
    let backend = RedisQueue::with_options(&url, options.namespace(namespace.clone()))
        .expect("REDIS_URL is a valid URL");
    match backend.now() {
        Ok(_) => Some(Scoped {
            backend: Arc::new(backend),
            namespace,
        }),
        Err(error) => skip_or_fail(&format!("Redis at {url}"), &error),
    }
}

/// A queue whose namespace is deleted when it is dropped.
pub struct Scoped {
    pub backend: Arc<RedisQueue>,
    pub namespace: String,
}

impl Drop for Scoped {
    fn drop(&mut self) {
        delete_namespace(&self.backend, &self.namespace);
    }
}

/// For `outband::conformance_tests!`: the queue, with the namespace deleted
/// once the test ends.
impl outband::test_suite::Fixture for Scoped {
    fn open(self) -> Option<(Arc<dyn BaseQueue>, Box<dyn std::any::Any>)> {
        let backend: Arc<dyn BaseQueue> = self.backend.clone();
        Some((backend, Box::new(self)))
    }
}

/// Deletes every key of a namespace (on one server).
pub fn delete_namespace(backend: &RedisQueue, namespace: &str) {
    let _ = outband_redis::delete_namespace(backend, namespace);
}

/// Whether `redis-server` can be run here; `false` after a notice, or a
/// panic when servers are required.
pub fn have_redis_server() -> bool {
    outband_testkit::have_program("redis-server")
}

/// A [`PrivateRedis`] under the shape `secrets.rs` uses: started after
/// [`have_redis_server`], its port a field.
pub struct Server {
    pub port: u16,
    server: PrivateRedis,
}

impl Server {
    /// Starts a server on a free port with `args` added to the defaults.
    pub fn start(args: &[&str], cluster_bus: bool) -> Self {
        let server = if cluster_bus {
            PrivateRedis::start_cluster_node(args)
        } else {
            PrivateRedis::start(args)
        };
        let server = server.expect("redis-server is installed");
        Self {
            port: server.port(),
            server,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

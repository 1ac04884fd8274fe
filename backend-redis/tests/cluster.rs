//! The conformance suite on a 3-node Redis Cluster that the test creates on
//! loopback ports (`redis-server --cluster-enabled yes`, then
//! `redis-cli --cluster create`) and removes at the end.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::BaseQueue;
use outband_redis::RedisQueue;
use outband_testkit::PrivateRedis;

fn cluster_is_ok(node: &PrivateRedis) -> bool {
    let Ok(client) = redis::Client::open(node.url()) else {
        return false;
    };
    let Ok(mut con) = client.get_connection() else {
        return false;
    };
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query::<String>(&mut con)
        .is_ok_and(|info| info.contains("cluster_state:ok"))
}

#[test]
fn conformance_suite_on_a_three_node_cluster() {
    let nodes: Option<Vec<PrivateRedis>> = (0..3)
        .map(|_| {
            PrivateRedis::start_cluster_node(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--appendonly",
                "no",
            ])
        })
        .collect();
    let Some(nodes) = nodes else {
        return;
    };
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port()))
        .collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(created.success(), "redis-cli --cluster create failed");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !nodes.iter().all(cluster_is_ok) {
        assert!(Instant::now() < deadline, "the cluster never became ok");
        std::thread::sleep(Duration::from_millis(50));
    }

    let url = format!(
        "redis+cluster://{}/?namespace=cluster-test",
        addresses.join(",")
    );
    let backend: Arc<dyn BaseQueue> = Arc::new(RedisQueue::connect(&url).expect("url"));
    let mut failed = Vec::new();
    for (name, case) in outband::test_suite::CASES {
        if catch_unwind(AssertUnwindSafe(|| case(&backend))).is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "failed on the cluster: {failed:?}");
}

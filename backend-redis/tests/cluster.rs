//! The conformance suite, awaited enqueues, awaited waits for a job's end,
//! the cancel feed, the list of paused queues, unique keys and concurrency
//! limits across nodes on a 3-node Redis Cluster
//! that the test creates on loopback ports (`redis-server --cluster-enabled
//! yes`, then `redis-cli --cluster create`) and removes at the end.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outband::{BaseQueue, Cancellation, Claimed, Enqueued, NewJob, Outcome, Unique, UniqueUntil};
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

    awaited_enqueues_on_the_cluster(&backend);
    awaited_waits_on_the_cluster(&backend);
    cancels_reach_a_feed_from_every_node(&backend);
    pauses_on_every_node(&backend);
    unique_keys_across_nodes(&backend);
    limits_across_nodes(&url);
    lost_limit_steps_are_swept(&url);
    a_claim_between_its_steps_keeps_its_slot(&url);
}

const LEASE: Duration = Duration::from_secs(60);

fn done() -> Outcome {
    Outcome::Done {
        result: None,
        duration: Duration::ZERO,
    }
}

/// Runs one Redis command with `args` on the node of its key.
fn command(backend: &RedisQueue, name: &str, args: &[&str]) -> i64 {
    outband_redis::with_connection(backend, |con| redis::cmd(name).arg(args).query(con))
        .unwrap_or_else(|e| panic!("{name} {args:?}: {e}"))
}

/// The member of a claimed limited job in its key's running set
/// (`T:n:token`), its queue's key prefix and its number.
fn running_member(backend: &RedisQueue, claimed: &Claimed) -> (String, String, String) {
    let (base, record) = outband_redis::keys_of(backend, &claimed.job.queue, claimed.job.id);
    let tag = &record[..=record.find('}').expect("a tagged record key")];
    let seq = (claimed.job.id.0 & ((1 << 40) - 1)).to_string();
    (format!("{tag}:{seq}:{}", claimed.lease.token), base, seq)
}

/// A process that dies after a completion's script and before the call
/// that frees the slot leaves a stale running member, and one that dies
/// between freeing a slot and making the parked job ready leaves that job
/// parked: `recover_expired` sweeps both, and the next job of the key
/// runs.
fn lost_limit_steps_are_swept(url: &str) {
    let backend = RedisQueue::connect(url).expect("url");
    let name = outband_testkit::unique_name("swept-");
    let (queue, key) = (format!("{name}-q"), format!("{name}-k"));
    let (running_key, _) = outband_redis::limit_keys_of(&backend, &key);
    let limited = |n| support::limits::limited(&queue, n, &key, 1);
    let sizes = || support::limits::sizes(&backend, &key);

    let a = backend.enqueue(limited(1)).expect("enqueue");
    let first = backend.claim(&queue, 1, LEASE).expect("claim");
    assert_eq!(first.iter().map(|c| c.job.id).collect::<Vec<_>>(), vec![a]);
    let (member, _, _) = running_member(&backend, &first[0]);
    backend.complete(&first[0].lease, done()).expect("complete");
    assert_eq!(sizes(), (0, 0));
    // the completion's script ran; the call that frees the slot did not
    command(&backend, "SADD", &[&running_key, &member]);
    let b = backend.enqueue(limited(2)).expect("enqueue");
    assert!(backend.claim(&queue, 1, LEASE).expect("claim").is_empty());
    println!("a stale slot: (running, parked) = {:?}", sizes());
    assert_eq!(sizes(), (1, 1), "b is parked behind the stale slot");
    backend.recover_expired().expect("recover");
    println!("swept: (running, parked) = {:?}", sizes());
    assert_eq!(sizes(), (0, 0), "the stale slot went back, b is ready");
    let second = backend.claim(&queue, 1, LEASE).expect("claim");
    assert_eq!(second.iter().map(|c| c.job.id).collect::<Vec<_>>(), vec![b]);

    // b's slot freed, but its parked successor never made ready
    let c = backend.enqueue(limited(3)).expect("enqueue");
    assert!(backend.claim(&queue, 1, LEASE).expect("claim").is_empty());
    let (member, _, _) = running_member(&backend, &second[0]);
    command(&backend, "SREM", &[&running_key, &member]);
    assert!(backend.claim(&queue, 1, LEASE).expect("claim").is_empty());
    println!("a parked job with room: (running, parked) = {:?}", sizes());
    assert_eq!(sizes(), (0, 1), "c is parked while the key has room");
    backend.recover_expired().expect("recover");
    println!("swept: (running, parked) = {:?}", sizes());
    let third = backend.claim(&queue, 1, LEASE).expect("claim");
    assert_eq!(third.iter().map(|c| c.job.id).collect::<Vec<_>>(), vec![c]);
    assert_eq!(sizes(), (1, 0));
    backend
        .complete(&second[0].lease, done())
        .expect("complete");
    backend.complete(&third[0].lease, done()).expect("complete");
    assert_eq!(sizes(), (0, 0));
}

/// The sweep leaves the slot of a running job, and of a job a claim holds
/// between its steps (in `B:lh`, its settle not run), under its token; it
/// removes the slot once the job no longer holds it.
fn a_claim_between_its_steps_keeps_its_slot(url: &str) {
    let backend = RedisQueue::connect(url).expect("url");
    let name = outband_testkit::unique_name("kept-");
    let (queue, key) = (format!("{name}-q"), format!("{name}-k"));
    let sizes = || support::limits::sizes(&backend, &key);
    backend
        .enqueue(support::limits::limited(&queue, 1, &key, 1))
        .expect("enqueue");
    let claimed = backend.claim(&queue, 1, LEASE).expect("claim");
    assert_eq!(claimed.len(), 1);
    let (_, record) = outband_redis::keys_of(&backend, &queue, claimed[0].job.id);
    let (_, base, seq) = running_member(&backend, &claimed[0]);
    backend.recover_expired().expect("recover");
    assert_eq!(sizes(), (1, 0), "a running job keeps its slot");

    // as a claim between its steps: pending under the token, held
    command(&backend, "HSET", &[&record, "s", "pending"]);
    command(&backend, "ZREM", &[&format!("{base}:run"), &seq]);
    command(
        &backend,
        "ZADD",
        &[&format!("{base}:lh"), "99999999999999", &seq],
    );
    backend.recover_expired().expect("recover");
    println!("held: (running, parked) = {:?}", sizes());
    assert_eq!(sizes(), (1, 0), "a held job keeps its slot");

    // the hold gone, and the slot with it
    command(&backend, "ZREM", &[&format!("{base}:lh"), &seq]);
    backend.recover_expired().expect("recover");
    println!("no longer held: (running, parked) = {:?}", sizes());
    assert_eq!(sizes(), (0, 0), "a slot no job holds goes back");
}

/// The limit scenarios of `limits.rs` with the limits' keys
/// changed in steps of their own, on queues and keys of fresh names.
fn limits_across_nodes(url: &str) {
    let first = RedisQueue::connect(url).expect("url");
    let second = RedisQueue::connect(url).expect("url");
    let name = outband_testkit::unique_name("limits-");
    support::limits::a_recovered_lease_gives_its_slot_back(
        &first,
        &second,
        &format!("{name}-lost"),
        &format!("{name}-api"),
    );
    support::limits::cancel_and_flush_leave_no_parked_entries(
        &first,
        &format!("{name}-parked"),
        &format!("{name}-db"),
    );
    let handles: Vec<RedisQueue> = (0..6)
        .map(|_| RedisQueue::connect(url).expect("url"))
        .collect();
    support::limits::racing_claims_keep_the_rate(
        &handles,
        &format!("{name}-raced"),
        &format!("{name}-rate"),
    );
    support::limits::cancel_and_flush_leave_no_rate_parked_entries(
        &first,
        &format!("{name}-rated"),
        &format!("{name}-mail"),
    );
}

/// Unique keys whose mappings, holders and new jobs are on different
/// nodes: a done holder keeps its key for the window, a purge deletes it and
/// forgets the key (its sweep looks at records on every node), and the
/// next job takes the key.
fn unique_keys_across_nodes(backend: &Arc<dyn BaseQueue>) {
    let hour = UniqueUntil::FinishedFor(Duration::from_secs(3600));
    let unique =
        |i: u64| job(&format!("unique-{i}"), i).unique(Unique::new(format!("k-{i}"), hour));
    let mut held = Vec::new();
    for i in 0..12 {
        let first = backend.enqueue_unique(unique(i)).expect("enqueue_unique");
        assert!(!first.duplicate);
        let claimed = backend
            .claim(&format!("unique-{i}"), 1, Duration::from_secs(60))
            .expect("claim")
            .remove(0);
        let done = Outcome::Done {
            result: None,
            duration: Duration::ZERO,
        };
        backend.complete(&claimed.lease, done).expect("complete");
        assert_eq!(
            backend.enqueue_unique(unique(i)).expect("enqueue_unique"),
            Enqueued::duplicate_of(first.id)
        );
        held.push(first.id);
    }
    backend.purge(Duration::ZERO).expect("purge");
    for (i, first) in (0..12).zip(held) {
        let again = backend.enqueue_unique(unique(i)).expect("enqueue_unique");
        assert!(!again.duplicate && again.id != first, "k-{i}: {again:?}");
    }
}

/// Each queue's pause key is on its slot's node, and the list of paused
/// queues on another: `paused` reads the keys of a dozen queues, whose
/// slots are on all three nodes, and lists them sorted.
fn pauses_on_every_node(backend: &Arc<dyn BaseQueue>) {
    let mut queues: Vec<String> = (0..12).map(|i| format!("held-{i}")).collect();
    for queue in &queues {
        assert!(backend.pause(queue).expect("pause"));
        backend.enqueue(job(queue, 0)).expect("enqueue");
        assert!(
            backend
                .claim(queue, 1, Duration::from_secs(60))
                .expect("claim")
                .is_empty()
        );
    }
    queues.sort_unstable();
    assert_eq!(backend.paused().expect("paused"), queues);
    for queue in &queues[..6] {
        assert!(backend.resume(queue).expect("resume"));
        assert!(backend.has_jobs_waiting(queue).expect("waiting"));
    }
    assert_eq!(backend.paused().expect("paused"), &queues[6..]);
}

fn job(queue: &str, value: u64) -> NewJob {
    NewJob::new(
        "app::awaited",
        outband::codec::encode(&(value,)).expect("encodes"),
    )
    .queue(queue)
}

/// Awaited enqueues, one job and a batch, reach their slot's node through
/// the async cluster connection; a batch across slots is refused, as on the
/// sync path, since it could not be atomic.
fn awaited_enqueues_on_the_cluster(backend: &Arc<dyn BaseQueue>) {
    let native = backend.as_async().expect("a native async enqueue");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut ids = Vec::new();
    for batch in [
        vec![job("awaited", 0)],
        vec![job("awaited", 1), job("awaited", 2).key("k")],
    ] {
        let stored = runtime
            .block_on(native.enqueue_many_async(batch))
            .expect("awaited enqueue on the cluster");
        ids.extend(stored);
    }
    let claimed = backend
        .claim("awaited", 10, Duration::from_secs(60))
        .expect("claim");
    let found: Vec<_> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(found, ids);

    let across = || {
        (0..20)
            .map(|i| job(&format!("across-{i}"), i))
            .collect::<Vec<_>>()
    };
    let sync = backend.enqueue_many(across());
    let awaited = runtime.block_on(native.enqueue_many_async(across()));
    let (Err(sync), Err(awaited)) = (sync, awaited) else {
        panic!("a batch across slots was stored");
    };
    assert_eq!(sync.to_string(), awaited.to_string());
    assert_eq!(backend.len("across-0").expect("len"), 0);
}

/// An awaited wait for a job's end blocks on a cluster connection of its
/// own, routed to the job's slot, and wakes when the job is done.
fn awaited_waits_on_the_cluster(backend: &Arc<dyn BaseQueue>) {
    let native = backend.as_async().expect("a native async enqueue");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    for queue in ["waited-a", "waited-b"] {
        let id = backend.enqueue(job(queue, 0)).expect("enqueue");
        let claimed = backend
            .claim(queue, 1, Duration::from_secs(60))
            .expect("claim")
            .remove(0);
        let took = std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let start = Instant::now();
                let wait = native
                    .wait_finished_async(id, Duration::from_secs(60))
                    .expect("an awaited wait");
                runtime.block_on(wait).expect("awaited wait on the cluster");
                start.elapsed()
            });
            std::thread::sleep(Duration::from_millis(200));
            let done = Outcome::Done {
                result: None,
                duration: Duration::ZERO,
            };
            backend.complete(&claimed.lease, done).expect("complete");
            waiter.join().expect("the waiter")
        });
        assert!(
            took < Duration::from_secs(30),
            "the awaited wait returned after {took:?}, not when the job ended"
        );
    }
}

/// A feed subscribes on one node; the cancel script runs on the node of
/// the job's slot, whose `PUBLISH` the cluster passes on to every node. A
/// dozen queues have their slots on all three nodes.
fn cancels_reach_a_feed_from_every_node(backend: &Arc<dyn BaseQueue>) {
    let mut feed = backend
        .cancel_feed()
        .expect("cancel_feed")
        .expect("a feed on the cluster");
    let mut cancelled = Vec::new();
    for i in 0..12 {
        let queue = format!("pushed-{i}");
        let id = backend.enqueue(job(&queue, i)).expect("enqueue");
        assert_eq!(
            backend
                .claim(&queue, 1, Duration::from_secs(60))
                .expect("claim")
                .len(),
            1
        );
        let asked = backend.cancel(id, "stop").expect("cancel");
        assert_eq!(asked, Cancellation::Requested);
        cancelled.push(id);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut received = Vec::new();
    while received.len() < cancelled.len() && Instant::now() < deadline {
        received.extend(feed.next(Duration::from_secs(5)).expect("next"));
    }
    received.sort_unstable();
    cancelled.sort_unstable();
    assert_eq!(received, cancelled);
}

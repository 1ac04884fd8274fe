//! A private `redis-server` with a password and a Unix socket: AUTH, the
//! database number and the socket path are taken from the URL.

use outband::test_suite::echo;
use outband::{BaseQueue, JobState, NewJob};
use outband_redis::RedisQueue;
use outband_testkit::{PrivateRedis, have_program};

fn job(value: u64) -> NewJob {
    NewJob::new(
        echo::NAME,
        outband::codec::encode(&(value,)).expect("encodes"),
    )
    .queue("urls")
}

#[test]
fn auth_database_number_and_unix_socket_come_from_the_url() {
    if !have_program("redis-server") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("outband-redis-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("redis.sock");
    let socket = socket.to_str().expect("utf-8 path");
    let Some(server) = PrivateRedis::start(&[
        "--requirepass",
        "s3cret",
        "--unixsocket",
        socket,
        "--appendonly",
        "no",
    ]) else {
        return;
    };
    let keys_in = |db: u8| -> i64 {
        let url = format!("redis://:s3cret@127.0.0.1:{}/{db}", server.port());
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("DBSIZE").query(&mut con).unwrap()
    };

    let no_password = RedisQueue::connect(&server.url()).expect("url");
    assert!(no_password.enqueue(job(1)).is_err(), "AUTH is required");

    let tcp = format!(
        "redis://:s3cret@127.0.0.1:{}/3?namespace=url-test",
        server.port()
    );
    let backend = RedisQueue::connect(&tcp).expect("url");
    let id = backend.enqueue(job(1)).expect("enqueue over TCP");
    assert!(
        keys_in(3) > 0 && keys_in(0) == 0,
        "the jobs are in database 3"
    );

    let unix = format!("redis+unix://{socket}?db=3&pass=s3cret&namespace=url-test");
    let over_socket = RedisQueue::connect(&unix).expect("url");
    let job = over_socket.job(id).expect("job over the socket");
    assert_eq!(job.map(|j| j.state), Some(JobState::Pending));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

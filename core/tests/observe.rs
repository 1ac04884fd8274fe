//! The observer of `outband::observe` hears what this process does: each
//! enqueue with how many jobs it stored, each claim of a processor, and
//! each attempt's end with its command, queue and run time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use outband::observe::{self, Attempt, AttemptEnd, Observer};
use outband::{BaseQueue, MemoryQueue, MultiProcessor, ProcessorConfig, queue_command};
use outband_testkit::poll_until;

#[queue_command(queue = "observed")]
fn works(n: u64) {
    std::thread::sleep(Duration::from_millis(n));
}

#[queue_command(queue = "observed", retries = 0)]
fn fails() -> Result<(), String> {
    Err("no luck".into())
}

#[derive(Default)]
struct Heard {
    enqueues: Mutex<Vec<(usize, bool)>>,
    claims: Mutex<Vec<(String, usize)>>,
    attempts: Mutex<Vec<(String, String, AttemptEnd, Duration)>>,
}

impl Observer for Heard {
    fn claimed(&self, queue: &str, jobs: usize, _took: Duration) {
        self.claims.lock().unwrap().push((queue.to_owned(), jobs));
    }

    fn attempt_ended(&self, attempt: &Attempt<'_>) {
        self.attempts.lock().unwrap().push((
            attempt.command.to_owned(),
            attempt.queue.to_owned(),
            attempt.end,
            attempt.run_time,
        ));
    }

    fn enqueued(&self, jobs: usize, _took: Duration, ok: bool) {
        self.enqueues.lock().unwrap().push((jobs, ok));
    }
}

#[test]
fn the_observer_hears_enqueues_claims_and_attempts() {
    let heard = Arc::new(Heard::default());
    observe::set_observer(heard.clone()).unwrap_or_else(|_| panic!("installed once"));
    assert!(
        observe::set_observer(Arc::new(Heard::default())).is_err(),
        "a second observer is refused"
    );

    let backend = Arc::new(MemoryQueue::new());
    works::enqueue_on(&*backend, 30).unwrap();
    works::enqueue_many_on(&*backend, [0, 0]).unwrap();
    fails::enqueue_on(&*backend).unwrap();
    assert_eq!(
        *heard.enqueues.lock().unwrap(),
        vec![(1, true), (2, true), (1, true)]
    );

    let config = ProcessorConfig::default()
        .queues(["observed"])
        .wait_time(Duration::from_millis(10))
        .max_threads(2);
    let processor = MultiProcessor::new(backend.clone(), config).unwrap();
    processor.start();
    poll_until("the jobs ended", None, Duration::from_millis(5), || {
        let stats = backend.stats("observed").unwrap();
        stats.done == 3 && stats.dead == 1
    });
    processor.stop();

    let claims = heard.claims.lock().unwrap().clone();
    assert!(claims.iter().all(|(queue, _)| queue == "observed"));
    assert_eq!(claims.iter().map(|(_, jobs)| jobs).sum::<usize>(), 4);
    let mut attempts = heard.attempts.lock().unwrap().clone();
    attempts.sort_by_key(|(command, _, _, run_time)| (command.clone(), *run_time));
    let ends: Vec<_> = attempts
        .iter()
        .map(|(command, queue, end, _)| (command.as_str(), queue.as_str(), *end))
        .collect();
    assert_eq!(
        ends,
        vec![
            (fails::NAME, "observed", AttemptEnd::Dead),
            (works::NAME, "observed", AttemptEnd::Done),
            (works::NAME, "observed", AttemptEnd::Done),
            (works::NAME, "observed", AttemptEnd::Done),
        ]
    );
    assert!(
        attempts[3].3 >= Duration::from_millis(30),
        "the run time is the command's: {:?}",
        attempts[3].3
    );
}

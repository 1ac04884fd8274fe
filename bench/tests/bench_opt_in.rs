//! In a program that links outband-bench but does not ask for the benchmark,
//! its commands are invisible: the registry does not list them, a lookup does
//! not find them, and a processor does not serve their queue.
//! `outband_bench::run` still runs them, and leaves them as invisible as
//! before.

use std::sync::Arc;
use std::time::Duration;

use outband::{
    BaseQueue, Error, JobState, MemoryQueue, MultiProcessor, NewJob, ProcessorConfig, Registry,
    SimpleProcessor, codec, queue_command,
};
use outband_bench::{self as bench, BenchConfig, Run};

/// A command of the program's own, as a user's worker has.
#[queue_command(queue = "bench-opt-in-mail")]
fn send_mail(to: String) {
    let _ = to;
}

/// The program's own command is there; the benchmark's are not. (Where
/// feature unification turns on outband's `test-suite`, the conformance
/// suite's commands are registered too.)
fn assert_bench_invisible(registry: &Registry) {
    let names: Vec<_> = registry.commands().map(|command| command.name).collect();
    assert!(names.contains(&send_mail::NAME), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|name| name.starts_with("outband::bench::")),
        "{names:?}"
    );
    let queues = registry.queues();
    assert!(queues.contains(&"bench-opt-in-mail"), "{queues:?}");
    assert!(!queues.contains(&"outband-bench"), "{queues:?}");
    for name in [bench::noop::NAME, bench::started::NAME] {
        match registry.get(name) {
            Err(Error::UnknownCommand {
                name: unknown,
                known,
            }) => {
                assert_eq!(unknown, name);
                assert!(known.iter().any(|k| k == send_mail::NAME), "{known:?}");
                assert!(
                    !known.iter().any(|k| k.starts_with("outband::bench::")),
                    "{known:?}"
                );
            }
            other => panic!("{name} is found: {other:?}"),
        }
    }
}

/// The queues a processor built with the default configuration serves.
fn assert_default_queues(queues: &[String]) {
    assert!(
        queues.iter().any(|q| q == "bench-opt-in-mail"),
        "{queues:?}"
    );
    assert!(!queues.iter().any(|q| q == "outband-bench"), "{queues:?}");
}

#[test]
fn the_registry_neither_lists_nor_finds_the_bench_commands() {
    assert_bench_invisible(Registry::global().unwrap());
}

#[test]
fn a_processor_serves_the_program_queues_and_not_the_bench_queue() {
    let backend = Arc::new(MemoryQueue::new());
    let simple = SimpleProcessor::new(backend.clone(), ProcessorConfig::default()).unwrap();
    assert_default_queues(simple.queues());
    let multi = MultiProcessor::new(backend, ProcessorConfig::default()).unwrap();
    assert_default_queues(multi.queues());
}

#[test]
fn a_bench_job_on_a_served_queue_ends_dead_as_an_unknown_command() {
    let backend = Arc::new(MemoryQueue::new());
    let job = NewJob::new(bench::noop::NAME, codec::encode(&()).unwrap())
        .queue("bench-opt-in-mail")
        .max_attempts(1);
    let id = backend.enqueue(job).unwrap();
    let processor = SimpleProcessor::new(backend.clone(), ProcessorConfig::default()).unwrap();
    assert!(processor.process_next().unwrap());
    let job = backend.job(id).unwrap().unwrap();
    assert_eq!(job.state, JobState::Dead);
    let error = job.last_error.unwrap_or_default();
    assert!(
        error.contains(&format!("unknown command `{}`", bench::noop::NAME)),
        "{error}"
    );
}

#[test]
fn the_bench_runs_its_commands_and_leaves_them_invisible() {
    let backend = Arc::new(MemoryQueue::new());
    let config = BenchConfig {
        jobs: 100,
        batch: 25,
        threads: vec![2],
        prefetch: vec![],
        progress: false,
        wait_time: Duration::from_millis(5),
        ..BenchConfig::default()
    };
    let report = bench::run(backend.clone(), &config).unwrap();
    for run in [Run::Simple, Run::Latency { threads: 2 }] {
        let row = report.row(run).unwrap();
        assert_eq!(backend.stats(&row.queue).unwrap().done, row.jobs as u64);
    }
    assert_bench_invisible(Registry::global().unwrap());
    let processor = SimpleProcessor::new(backend, ProcessorConfig::default()).unwrap();
    assert_default_queues(processor.queues());
}

//! Jobs no consumer of this binary would run: pending jobs in queues that
//! none of its commands serves.
//!
//! A binary that does not link the crate defining its commands (the linking
//! rule of [`outband::Registry`]) registers none of them, and so serves
//! none of their queues: their jobs would wait, silently, forever. The
//! consumer reports such queues at start, and `status` and `stats` report
//! them too.

use outband::{BaseQueue, Error, Registry};

/// A queue with pending jobs that this binary does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unserved {
    /// The queue's name.
    pub(crate) queue: String,
    /// Its pending jobs.
    pub(crate) pending: u64,
}

/// The queues of `backend` with pending jobs outside `served`; an empty
/// `served` means the queues of this binary's registered commands.
pub(crate) fn find(backend: &dyn BaseQueue, served: &[String]) -> Result<Vec<Unserved>, Error> {
    let registered;
    let served: Vec<&str> = if served.is_empty() {
        registered = Registry::global()?.queues();
        registered.clone()
    } else {
        served.iter().map(String::as_str).collect()
    };
    let mut unserved = Vec::new();
    for queue in backend.queues()? {
        if served.contains(&queue.as_str()) {
            continue;
        }
        let pending = backend.len(&queue)?;
        if pending > 0 {
            unserved.push(Unserved { queue, pending });
        }
    }
    Ok(unserved)
}

/// One warning line for each unserved queue.
pub(crate) fn describe(unserved: &[Unserved]) -> Vec<String> {
    unserved
        .iter()
        .map(|u| {
            format!(
                "queue `{}` has {} pending jobs, and no command of this binary serves it: \
                 they wait for a consumer that links the crate defining their commands \
                 (`use my_jobs as _;` in the consumer's main.rs), or that names the queue with --queue",
                u.queue, u.pending
            )
        })
        .collect()
}

/// A warning when this binary registers no command of its own: what a
/// consumer binary that forgot to link its commands' crate looks like.
pub(crate) fn no_commands() -> Result<Option<String>, Error> {
    // outband's own commands (the conformance suite's, when its feature is
    // on) are not the program's
    let registry = Registry::global()?;
    if registry
        .commands()
        .any(|command| !command.name.starts_with("outband::"))
    {
        return Ok(None);
    }
    Ok(Some(
        "this binary registers no #[queue_command]: link the crate that defines them \
         (`use my_jobs as _;` in the consumer's main.rs), or its jobs are never run"
            .to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This crate's own test binary links no command of a program: what a
    /// consumer that forgot to link its commands' crate looks like.
    #[test]
    fn a_binary_without_commands_of_its_own_is_warned_of() {
        let warning = no_commands().unwrap().expect("a warning");
        assert!(
            warning.contains("registers no #[queue_command]"),
            "{warning}"
        );
    }

    #[test]
    fn pending_jobs_on_queues_not_served_are_found_and_described() {
        let backend = outband::MemoryQueue::new();
        for queue in ["mail", "mail", "served"] {
            backend
                .enqueue(outband::NewJob::new("x::y", vec![]).queue(queue))
                .unwrap();
        }
        let unserved = find(&backend, &["served".to_owned()]).unwrap();
        assert_eq!(
            unserved,
            [Unserved {
                queue: "mail".to_owned(),
                pending: 2
            }]
        );
        let lines = describe(&unserved);
        assert!(
            lines[0].starts_with("queue `mail` has 2 pending jobs"),
            "{lines:?}"
        );
    }
}

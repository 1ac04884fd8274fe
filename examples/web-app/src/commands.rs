//! The work that runs out-of-band, in both forms a `#[queue_command]` takes.
//!
//! - [`churn_data`](fn@churn_data), djutils' example, is an `async fn`: it
//!   churns the data and posts the results to a webhook. The consumer runs
//!   it on its tokio runtime, many at once (the processor's `concurrency`),
//!   and none of them holds a thread while it waits for the receiver.
//! - [`index_words`](fn@index_words) is a plain `fn`: CPU work with nothing
//!   to wait for, which the consumer runs on one of its worker threads, so it
//!   never stalls the runtime the async jobs share.
//!
//! Both are enqueued the same way, `f::enqueue(…).await`, and a handler
//! cannot tell them apart. As the seed recommends, every command of the app
//! lives in this one module; it is part of the same binary as the consumer,
//! so the consumer knows it (the linking rule).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use outband::queue_command;
use serde::Serialize;

/// The URL [`churn_data`](fn@churn_data) posts its results to: the
/// `CHURN_WEBHOOK` environment variable of the consumer.
fn webhook_url() -> Result<String, String> {
    std::env::var("CHURN_WEBHOOK")
        .map_err(|_| "CHURN_WEBHOOK is not set: the URL to post the churned results to".to_owned())
}

/// How long one delivery may take, connecting included, before the attempt
/// fails and the job is retried later.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client every run of [`churn_data`](fn@churn_data) shares, so
/// that they share its pool of open connections to the receiver.
fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(WEBHOOK_TIMEOUT)
                .build()
                .map_err(|e| format!("cannot build the webhook client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The webhook's JSON body: what one run of [`churn_data`](fn@churn_data)
/// found.
#[derive(Debug, Serialize)]
pub(crate) struct Churned {
    /// The record churned.
    pub(crate) record: u64,
    /// The seed's `another_value`, passed through.
    pub(crate) another_value: i64,
    /// Words in the data.
    pub(crate) words: u64,
    /// A checksum of the data's bytes, as 16 hex digits.
    pub(crate) checksum: String,
}

/// Churns `some_data` for the record `record` and posts the results, with
/// `another_value`, to the webhook at `CHURN_WEBHOOK`: the processing and
/// the call to another service that should happen outside the
/// request/response cycle.
///
/// The seed passes the model instance itself; a job carries the record's id
/// instead (a database handle does not serialize), and the command loads
/// what it needs when it runs. Here the "record" is the id alone; the
/// seed's `process_data` becomes counting the payload's words and hashing
/// its bytes, and its `propagate_results` a `POST` of a [`Churned`] as JSON.
/// Any answer but a 2xx, a refused connection or a timeout fails the
/// attempt, and the job is retried; so the receiver may see a result twice,
/// as with any webhook, and should treat the record as its key. Returns the
/// word count, which the job keeps as its result.
#[queue_command(queue = "churn")]
pub(crate) async fn churn_data(
    record: u64,
    some_data: String,
    another_value: i64,
) -> Result<u64, String> {
    let words = some_data.split_whitespace().count() as u64;
    let churned = Churned {
        record,
        another_value,
        words,
        checksum: format!("{:016x}", checksum(&some_data)),
    };
    let url = webhook_url()?;
    let response = client()?
        .post(&url)
        .json(&churned)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("POST {url}: the receiver answered {status}"));
    }
    Ok(words)
}

/// The checksum [`churn_data`](fn@churn_data) reports: a polynomial hash of
/// the bytes, cheap enough to compute inside an async command.
fn checksum(data: &str) -> u64 {
    data.bytes().fold(0u64, |sum, byte| {
        sum.wrapping_mul(31).wrapping_add(u64::from(byte))
    })
}

/// The file each run of [`index_words`](fn@index_words) appends its line
/// to: the `INDEX_RESULTS` environment variable, or `indexed.txt` in the
/// working directory.
fn index_path() -> String {
    std::env::var("INDEX_RESULTS").unwrap_or_else(|_| "indexed.txt".to_owned())
}

/// Indexes the words of `text`, the document `document`: counts every word,
/// case folded and stripped of punctuation, and appends one line, `document
/// words distinct most_frequent` separated by tabs, to `indexed.txt` (or
/// `INDEX_RESULTS`). The most frequent word is the first in alphabetical
/// order among those counted most. Returns the number of distinct words.
///
/// A plain `fn`: the work is all CPU, so it runs on a worker thread of the
/// consumer, where a long document holds up nobody else's job. One line per
/// run is what lets the integration test prove that every job ran exactly
/// once.
#[queue_command(queue = "churn")]
pub(crate) fn index_words(document: u64, text: String) -> Result<u64, String> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for word in text.split_whitespace() {
        let word: String = word
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        if !word.is_empty() {
            *counts.entry(word).or_default() += 1;
        }
    }
    let words: u64 = counts.values().sum();
    // `max_by_key` keeps the last of equals; reversed, that is the first.
    let most_frequent = counts
        .iter()
        .rev()
        .max_by_key(|(_, count)| **count)
        .map_or("", |(word, _)| word.as_str());
    let line = format!("{document}\t{words}\t{}\t{most_frequent}\n", counts.len());

    let path = index_path();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{path}: {e}"))?;
    // One write of a short line to a file opened for appending: lines from
    // the consumer's threads, or from several consumers, never interleave.
    file.write_all(line.as_bytes())
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(counts.len() as u64)
}

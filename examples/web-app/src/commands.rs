//! The work that runs out-of-band: djutils' `churn_data`, in Rust form.
//!
//! As the seed recommends, every `#[queue_command]` of the app lives in this
//! one module. It is part of the same binary as the consumer, so the consumer
//! knows it (the linking rule).

use std::io::Write;

use outband::queue_command;

/// The file each run of [`churn_data`](fn@churn_data) appends its results to: the
/// `CHURN_RESULTS` environment variable, or `churned.txt` in the working
/// directory.
pub(crate) fn results_path() -> String {
    std::env::var("CHURN_RESULTS").unwrap_or_else(|_| "churned.txt".to_owned())
}

/// Churns `some_data` for the record `record`: the expensive processing that
/// should happen outside the request/response cycle.
///
/// The seed passes the model instance itself; a job carries the record's id
/// instead (a database handle does not serialize), and the command loads
/// what it needs when it runs. Here the "record" is the id alone; the
/// seed's `process_data` becomes counting the payload's words and hashing
/// its bytes, and its `propagate_results` appending one line, `record
/// another_value words checksum` separated by tabs, to [`results_path`].
/// One line per run is what lets the integration test prove that every job
/// ran exactly once. Returns the word count, which the job keeps as its
/// result.
#[queue_command(queue = "churn")]
pub(crate) fn churn_data(
    record: u64,
    some_data: String,
    another_value: i64,
) -> Result<u64, String> {
    let words = some_data.split_whitespace().count() as u64;
    let checksum = some_data.bytes().fold(0u64, |sum, byte| {
        sum.wrapping_mul(31).wrapping_add(u64::from(byte))
    });
    let line = format!("{record}\t{another_value}\t{words}\t{checksum:016x}\n");

    let path = results_path();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{path}: {e}"))?;
    // One write of a short line to a file opened for appending: lines from
    // the consumer's threads, or from several consumers, never interleave.
    file.write_all(line.as_bytes())
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(words)
}

//! Run with: cargo run -p custom-backend --bin custom-backend-consumer -- run --url file:///tmp/outband-jobs
//!
//! The consumer daemon on a `FileQueue`: `outband_daemon::main()` with this
//! crate linked, so `--url file://…` (or `OUTBAND_URL`) opens the directory.
//! Every daemon command works: `start -p PIDFILE -l LOG`, `stop`, `status`,
//! `stats`, `dead list`, …

use std::io::Write;
use std::process::ExitCode;

use outband::queue_command;
// Registers the `file://` scheme: without a use, the linker would drop the
// crate and its registration with it.
use custom_backend as _;

/// Appends `tag` and the consumer's pid to the file at `path`, one line.
#[queue_command(name = "files::record", queue = "files")]
fn record(path: String, tag: String) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{path}: {e}"))?;
    // one short write per line: appends from several processes do not interleave
    file.write_all(format!("{tag} {}\n", std::process::id()).as_bytes())
        .map_err(|e| format!("{path}: {e}"))
}

fn main() -> ExitCode {
    outband_daemon::main()
}

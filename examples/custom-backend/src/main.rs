//! Run with: cargo run -p custom-backend
//!
//! Enqueues a few jobs on a [`FileQueue`](custom_backend::FileQueue) and
//! processes them, printing where each job's file is at every step. The
//! directory is `./outband-jobs`, or the one named by `OUTBAND_URL`
//! (`file:///path/to/dir`). Run it twice and the jobs of the first run are
//! still there, `done`.

use std::path::Path;

use outband::{BaseQueue, ProcessorConfig, SimpleProcessor, queue_command};
// Linking the crate registers its `file://` scheme with `outband::open`.
use custom_backend as _;

/// Resizes a picture; here it only says so.
#[queue_command(queue = "images", key = album)]
fn resize(album: String, picture: String, width: u32) -> String {
    let line = format!("{album}/{picture} at {width}px");
    println!("ran: resize {line}");
    line
}

/// The job files of the `images` queue, per state directory.
fn files_per_state(dir: &Path) -> String {
    ["pending", "running", "done", "dead"]
        .iter()
        .map(|state| {
            let count =
                std::fs::read_dir(dir.join("queues/images").join(state)).map_or(0, Iterator::count);
            format!("{state}: {count}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("OUTBAND_URL").unwrap_or_else(|_| "file://outband-jobs".to_owned());
    let dir = url
        .strip_prefix("file://")
        .unwrap_or("outband-jobs")
        .to_owned();
    let backend = outband::open(&url)?;
    outband::set_default_backend(backend.clone())?;

    // The producer's side: each call writes one JSON file and returns its id.
    let mut ids = Vec::new();
    for (album, picture) in [
        ("holiday", "beach.jpg"),
        ("holiday", "hills.jpg"),
        ("cats", "tom.jpg"),
    ] {
        ids.push(resize(album.to_owned(), picture.to_owned(), 800)?.id());
    }
    println!("enqueued {} jobs on {url}", ids.len());
    println!("files: {}", files_per_state(Path::new(&dir)));

    // The consumer's side: claiming renames a file from pending/ to
    // running/; completing renames it on to done/.
    let consumer = SimpleProcessor::new(
        backend.clone(),
        ProcessorConfig::default().queues(["images"]),
    )?;
    while consumer.process_next()? {}
    println!("files: {}", files_per_state(Path::new(&dir)));

    for id in ids {
        let job = backend.job(id)?.ok_or("a job is gone")?;
        println!(
            "job {} is {} after {} attempt(s), and returned {:?}",
            job.id,
            job.state,
            job.attempt,
            job.result::<String>().transpose()?
        );
    }
    Ok(())
}

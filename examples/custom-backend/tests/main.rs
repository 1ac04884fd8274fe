//! The example program runs as a new user runs it: in an empty directory,
//! with `OUTBAND_URL` unset, so its jobs go to `./outband-jobs`.

use std::process::Command;

#[test]
fn enqueues_and_processes_three_jobs_as_files() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_custom-backend"))
            .current_dir(dir.path())
            .env_remove("OUTBAND_URL")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let stdout = run();
    let ran: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ran: ")).collect();
    assert_eq!(
        ran,
        [
            "ran: resize holiday/beach.jpg at 800px",
            "ran: resize holiday/hills.jpg at 800px",
            "ran: resize cats/tom.jpg at 800px",
        ],
        "each job ran once, the album's pictures in enqueue order"
    );
    assert!(
        stdout.contains("files: pending: 3, running: 0, done: 0, dead: 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("files: pending: 0, running: 0, done: 3, dead: 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("is done after 1 attempt(s), and returned Some(\"cats/tom.jpg at 800px\")"),
        "{stdout}"
    );
    let done = dir.path().join("outband-jobs/queues/images/done");
    assert_eq!(std::fs::read_dir(&done).unwrap().count(), 3);

    // the files outlive the process: a second run adds three more
    run();
    assert_eq!(std::fs::read_dir(&done).unwrap().count(), 6);
}

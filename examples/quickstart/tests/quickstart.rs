//! The quickstart runs as a new user runs it: in an empty directory, with
//! `OUTBAND_URL` unset, so its queue is `outband.db` there.

#[test]
fn runs_ten_calls_on_the_default_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .current_dir(dir.path())
        .env_remove("OUTBAND_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ran: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ran: ")).collect();
    let expected: Vec<String> = (1..=10)
        .map(|n| format!("ran: hello, world (call {n})"))
        .collect();
    assert_eq!(ran, expected, "each call ran once, in enqueue order");
    assert!(
        stdout.contains("is done, and returned Some(\"hello, world (call 10)\")"),
        "{stdout}"
    );
    assert!(
        dir.path().join("outband.db").exists(),
        "the default queue is ./outband.db"
    );
}

//! The example's three runs print what the seed's doctest expects.

#[test]
fn simple_keeps_order_and_multi_respects_its_threads() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_processors"))
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
    let summaries: Vec<&str> = stdout.lines().filter(|l| l.contains("finished")).collect();
    assert_eq!(summaries.len(), 3, "{stdout}");
    assert_eq!(
        summaries[0].trim(),
        "finished [1, 2, 3, 4], at most 1 at once"
    );
    assert!(summaries[1].contains("finished [3, 4, 1, 2]"), "{stdout}");
    assert_eq!(
        summaries[2].trim(),
        "finished [1, 2, 3, 4], at most 2 at once"
    );
}

//! The dashboard as a person sees it: the real consumer daemon and the real
//! `dashboard` command of the demo binary, driven through headless Chromium
//! by WebDriver (chromedriver). The tests enqueue through the backend, and
//! check what the page shows (its text and attributes) and the files the
//! jobs write, never the backend's answers.
//!
//! Each scenario runs on an SQLite file in its temporary directory and on
//! the Redis at `REDIS_URL` in a namespace of its own. Without `chromium`
//! and `chromedriver`, or that Redis, a test says so and passes, unless
//! `OUTBAND_REQUIRE_SERVERS=1`. The scenarios take turns: one browser at a
//! time. Screenshots go to `CARGO_TARGET_TMPDIR/screenshots`, and with
//! `OUTBAND_SCREENSHOTS=1` the SQLite runs also write the README's two to
//! the repository's `docs/screenshots`.
#![cfg(feature = "dashboard")]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use outband::{BaseQueue, JobId, NewJob, codec};
use outband_testkit::{
    free_port, have_program, kill_daemons, pid_in, redis_url, skip_or_fail, unique_name, with_param,
};

const BIN: &str = env!("CARGO_BIN_EXE_outband-demo-consumer");

/// How long anything a test waits for may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// One browser at a time: Chromium is heavy for a small machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The backends the dashboard is tested on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Sqlite,
    Redis,
}

/// One test's directory and backend, and the consumers and dashboards it
/// started; kills them when the test ends however it ends.
struct World {
    kind: Backend,
    dir: tempfile::TempDir,
    url: String,
    backend: Arc<dyn BaseQueue>,
    namespace: Option<String>,
    daemons: Vec<PathBuf>,
    dashboards: Vec<Child>,
}

impl World {
    /// A fresh world, or `None` (with a notice) when its server is missing
    /// and not required.
    fn new(kind: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let (url, backend, namespace): (String, Arc<dyn BaseQueue>, _) = match kind {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
                let backend = Arc::new(outband_diesel::DatabaseQueue::open(&url).unwrap());
                (url, backend, None)
            }
            Backend::Redis => {
                let base = redis_url();
                let namespace = unique_name("outband-browser-test-");
                let url = with_param(&base, "namespace", &namespace);
                let backend = match outband_redis::RedisQueue::connect(&url) {
                    Ok(backend) => Arc::new(backend),
                    Err(error) => return skip_or_fail(&format!("Redis at {base}"), &error),
                };
                if let Err(error) = backend.now() {
                    return skip_or_fail(&format!("Redis at {base}"), &error);
                }
                (url, backend, Some(namespace))
            }
        };
        Some(World {
            kind,
            dir,
            url,
            backend,
            namespace,
            daemons: Vec::new(),
            dashboards: Vec::new(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts a consumer daemon (`start -p NAME.pid -l NAME.log`) on the
    /// world's backend, polling often and enqueuing no periodic job.
    fn start_consumer(&mut self, name: &str) {
        let pidfile = self.path(&format!("{name}.pid"));
        let out = Command::new(BIN)
            .arg("start")
            .arg("-p")
            .arg(&pidfile)
            .arg("-l")
            .arg(self.path(&format!("{name}.log")))
            .args(["--url", &self.url, "-d", "0.05", "-m", "0.2", "-n"])
            .env_remove("OUTBAND_URL")
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the consumer did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.daemons.push(pidfile.clone());
        assert!(
            pid_in(&pidfile).is_some(),
            "a started daemon writes its pid"
        );
    }

    /// Starts `dashboard --bind 127.0.0.1:0` plus `extra` on the world's
    /// backend; returns the address it says it serves.
    fn start_dashboard(&mut self, extra: &[&str]) -> String {
        let mut child = Command::new(BIN)
            .args(["dashboard", "--bind", "127.0.0.1:0", "--url", &self.url])
            .args(extra)
            .env_remove("OUTBAND_URL")
            .env_remove("OUTBAND_DASHBOARD_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        self.dashboards.push(child);
        let (said, heard) = std::sync::mpsc::channel();
        // Reads on after the first line, so that the dashboard's logging
        // never fills the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = said.send(line);
            }
        });
        let line = heard.recv_timeout(PATIENCE).unwrap_or_default();
        line.trim()
            .strip_prefix("dashboard on ")
            .unwrap_or_else(|| panic!("the dashboard did not say where it listens: {line:?}"))
            .trim_end_matches(", read-only")
            .to_owned()
    }

    fn enqueue(&self, job: NewJob) -> JobId {
        self.backend.enqueue(job.queue("demo")).unwrap()
    }

    /// A `demo::record` job appending `tag` to `file` in the world's
    /// directory.
    fn record(&self, file: &str, tag: &str) -> NewJob {
        let path = self.path(file).display().to_string();
        NewJob::new("demo::record", codec::encode(&(path, tag)).unwrap())
    }

    fn lines(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(file))
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Saves a screenshot as `NAME-BACKEND.png` under `CARGO_TARGET_TMPDIR`,
    /// and, for the README's pictures, as `NAME.png` in the repository's
    /// `docs/screenshots` when `OUTBAND_SCREENSHOTS=1` and the backend is
    /// SQLite (one picture per page, not one per backend).
    fn save_screenshot(&self, name: &str, png: &[u8]) {
        const IN_THE_README: [&str; 2] = ["overview", "dead-letters"];
        let mut dirs = vec![Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")];
        if self.kind == Backend::Sqlite
            && IN_THE_README.contains(&name)
            && std::env::var("OUTBAND_SCREENSHOTS").is_ok_and(|v| v == "1")
        {
            dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).unwrap();
            let file = if dir.ends_with("docs/screenshots") {
                format!("{name}.png")
            } else {
                format!("{name}-{:?}.png", self.kind).to_lowercase()
            };
            std::fs::write(dir.join(file), png).unwrap();
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        kill_daemons(&self.daemons);
        for child in &mut self.dashboards {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(namespace) = &self.namespace
            && let Ok(queue) = outband_redis::RedisQueue::connect(&self.url)
        {
            let _ = outband_redis::delete_namespace(&queue, namespace);
        }
    }
}

/// chromedriver in a process group of its own, with the Chromium it
/// starts: the whole group is killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// chromedriver on a free port, once it answers; `None` (with a notice)
    /// when chromedriver or Chromium is missing and not required.
    fn start() -> Option<Self> {
        if !have_program("chromedriver") || !have_program("chromium") {
            return None;
        }
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("starting chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .build()
            .into();
        let deadline = Instant::now() + PATIENCE;
        while agent.get(&format!("{}/status", driver.url)).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(driver)
    }

    /// A headless Chromium session.
    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "args": [
                    "--headless=new",
                    // a test running as root has no sandbox to start
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=1280,900",
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's: this ends Chromium too.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-9", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Runs `scenario` in a browser on `kind`, unless something it needs is
/// missing and not required.
fn in_browser<F, Fut>(kind: Backend, scenario: F)
where
    F: FnOnce(World, Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(world) = World::new(kind) else {
        return;
    };
    let Some(driver) = Driver::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let browser = driver.browser().await;
        scenario(world, browser.clone()).await;
        let _ = browser.close().await;
    });
    drop(driver);
}

/// Waits until `done` holds, checking every 200 ms; panics after
/// [`PATIENCE`] with what it waited for.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The text of the first element at `css`, or `None` while there is none.
async fn text(browser: &Client, css: &str) -> Option<String> {
    let element = browser.find(Locator::Css(css)).await.ok()?;
    element.text().await.ok().map(|text| text.trim().to_owned())
}

/// The overview's count of `state` jobs in queue `demo`: a link to them.
async fn count(browser: &Client, state: &str) -> Option<String> {
    text(
        browser,
        &format!("td[data-queue=\"demo\"][data-state=\"{state}\"] > a"),
    )
    .await
}

/// The overview's cell of queue `demo` that comes `after` cells after its
/// last count: 1 jobs/s, 2 p50, 3 p99, 4 paused or on.
async fn after_counts(browser: &Client, after: usize) -> Option<String> {
    let css = format!(
        "td[data-queue=\"demo\"][data-state=\"cancelled\"]{}",
        " + td".repeat(after)
    );
    text(browser, &css).await
}

/// The state a job's page shows, after loading it afresh.
async fn state_shown(browser: &Client, base: &str, id: JobId) -> String {
    browser.goto(&format!("{base}jobs/{id}")).await.unwrap();
    let state = browser
        .find(Locator::XPath(
            "//dt[normalize-space()='state']/following-sibling::dd[1]",
        ))
        .await
        .expect("a job's page shows its state");
    state.text().await.unwrap().trim().to_owned()
}

/// Clicks the button reading `label` in the table row that links to `row`,
/// and waits for the page it leads to.
async fn click_in_row(browser: &Client, row: &str, label: &str) {
    let xpath =
        format!("//tr[td/a[normalize-space()='{row}']]//button[normalize-space()='{label}']");
    let button = browser
        .find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no {label} button in the row of {row}: {e}"));
    let before = browser.current_url().await.unwrap();
    button.click().await.unwrap();
    // the form posts, then the dashboard sends the browser back with a note
    eventually("the page after the click loads", async || {
        browser.find(Locator::Css(".note, .problem")).await.is_ok()
            || browser.current_url().await.is_ok_and(|url| url != before)
    })
    .await;
    let problem = text(browser, ".problem").await;
    assert!(problem.is_none(), "the dashboard refused: {problem:?}");
}

// ---- the scenarios ----

/// The overview's counts follow the jobs as they run, without a reload.
async fn counts_change_as_jobs_run(mut world: World, browser: Client) {
    const JOBS: usize = 40;
    for i in 0..JOBS {
        let path = world.path("out").display().to_string();
        let args = codec::encode(&(path, format!("job {i}"), 250_u64)).unwrap();
        world.enqueue(NewJob::new("demo::sleep_then_record", args));
    }
    let base = world.start_dashboard(&[]);
    browser.goto(&base).await.unwrap();
    let all = JOBS.to_string();
    assert_eq!(
        count(&browser, "pending").await,
        Some(all.clone()),
        "a link"
    );
    assert_eq!(count(&browser, "done").await.as_deref(), Some("0"));
    assert_eq!(after_counts(&browser, 2).await.as_deref(), Some("-"));

    world.start_consumer("consumer");
    eventually("the overview shows every job done", async || {
        count(&browser, "done").await.as_ref() == Some(&all)
    })
    .await;
    assert_eq!(count(&browser, "pending").await.as_deref(), Some("0"));
    assert_eq!(count(&browser, "running").await.as_deref(), Some("0"));
    assert_eq!(world.lines("out").len(), JOBS);
    // the rest of the line follows without a reload too
    let throughput = after_counts(&browser, 1).await.unwrap();
    assert_ne!(throughput, "0.00", "jobs/s");
    let p50 = after_counts(&browser, 2).await.unwrap();
    assert!(p50.ends_with(" ms"), "p50: {p50}");
    assert_eq!(after_counts(&browser, 4).await.as_deref(), Some("on"));
    // The rate of the look that saw them done was above zero; once a later
    // look says zero, the chart holds the rise and the fall.
    eventually("the overview's rate falls back to zero", async || {
        text(&browser, "#rates")
            .await
            .is_some_and(|t| t.starts_with("0.0 done/s"))
    })
    .await;
    world.save_screenshot("overview", &browser.screenshot().await.unwrap());
}

/// A dead job retried with its button on the dead-letters page runs again
/// and ends done.
async fn a_dead_job_retried_from_the_page_ends_done(mut world: World, browser: Client) {
    world.start_consumer("consumer");
    // the directory of its file is missing: its only attempt fails
    let id = world.enqueue(world.record("missing/out", "retried").max_attempts(1));
    let other = world.enqueue(world.record("missing/other", "left").max_attempts(1));
    let base = world.start_dashboard(&[]);
    for job in [id, other] {
        eventually("the job's page shows it dead", async || {
            state_shown(&browser, &base, job).await == "dead"
        })
        .await;
    }
    std::fs::create_dir(world.path("missing")).unwrap();

    browser
        .goto(&format!("{base}dead?queue=demo"))
        .await
        .unwrap();
    let error = text(&browser, "td.error").await.unwrap_or_default();
    assert!(error.contains("No such file"), "{error}");
    world.save_screenshot("dead-letters", &browser.screenshot().await.unwrap());
    click_in_row(&browser, &id.to_string(), "Retry").await;

    eventually("the retried job's page shows it done", async || {
        state_shown(&browser, &base, id).await == "done"
    })
    .await;
    assert_eq!(world.lines("missing/out"), ["retried"]);
    assert_eq!(state_shown(&browser, &base, other).await, "dead");
}

/// No consumer claims a job of a queue paused from the queues page, until
/// it is resumed there.
async fn a_paused_queue_stops_being_claimed(mut world: World, browser: Client) {
    world.start_consumer("consumer");
    // a job so that the queue is listed
    let first = world.enqueue(world.record("out", "before"));
    let base = world.start_dashboard(&[]);
    eventually("the first job's page shows it done", async || {
        state_shown(&browser, &base, first).await == "done"
    })
    .await;

    browser.goto(&format!("{base}queues")).await.unwrap();
    click_in_row(&browser, "demo", "Pause").await;
    browser.goto(&format!("{base}queues")).await.unwrap();
    assert_eq!(
        text(&browser, "span.paused").await.as_deref(),
        Some("paused")
    );

    let held = world.enqueue(world.record("out", "held"));
    // the consumer polls many times over this while
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(state_shown(&browser, &base, held).await, "pending");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.goto(&format!("{base}queues")).await.unwrap();
    world.save_screenshot("queues-paused", &browser.screenshot().await.unwrap());
    click_in_row(&browser, "demo", "Resume").await;
    eventually("the held job's page shows it done", async || {
        state_shown(&browser, &base, held).await == "done"
    })
    .await;
    assert_eq!(world.lines("out"), ["before", "held"]);
}

/// The forms that change something, and their buttons, on the page shown:
/// a filter form (a GET) changes nothing.
async fn actions_shown(browser: &Client) -> Vec<String> {
    let mut actions = Vec::new();
    for form in browser.find_all(Locator::Css("form")).await.unwrap() {
        let method = form.attr("method").await.unwrap().unwrap_or_default();
        if !method.eq_ignore_ascii_case("get") {
            actions.push(form.html(false).await.unwrap());
        }
    }
    for button in browser.find_all(Locator::Css("button")).await.unwrap() {
        let in_a_filter = button
            .find(Locator::XPath("ancestor::form[@method='get']"))
            .await
            .is_ok();
        if !in_a_filter {
            actions.push(button.html(false).await.unwrap());
        }
    }
    for link in browser
        .find_all(Locator::Css("a[href*='flush'], a[href*='delete-all']"))
        .await
        .unwrap()
    {
        actions.push(link.html(false).await.unwrap());
    }
    actions
}

/// A `--read-only` dashboard shows no button and no form that changes
/// something, where the same pages of a writable one do.
async fn the_read_only_mode_shows_no_button(mut world: World, browser: Client) {
    world.start_consumer("consumer");
    let dead = world.enqueue(world.record("missing/out", "dead").max_attempts(1));
    let writable = world.start_dashboard(&[]);
    eventually("the job's page shows it dead", async || {
        state_shown(&browser, &writable, dead).await == "dead"
    })
    .await;
    // a pending job, in a queue paused from the page
    browser.goto(&format!("{writable}queues")).await.unwrap();
    click_in_row(&browser, "demo", "Pause").await;
    let pending = world.enqueue(world.record("out", "pending"));

    let read_only = world.start_dashboard(&["--read-only"]);
    let pages = [
        String::new(),
        "jobs?queue=demo&state=pending".to_owned(),
        "jobs?queue=demo&state=dead".to_owned(),
        format!("jobs/{pending}"),
        format!("jobs/{dead}"),
        "dead?queue=demo".to_owned(),
        "queues".to_owned(),
        "periodic".to_owned(),
    ];
    for page in &pages {
        browser.goto(&format!("{read_only}{page}")).await.unwrap();
        assert_eq!(
            text(&browser, "header .mode").await.as_deref(),
            Some("read-only"),
            "/{page}"
        );
        let actions = actions_shown(&browser).await;
        assert!(
            actions.is_empty(),
            "/{page} of a read-only dashboard shows {actions:?}"
        );
    }
    // what the read-only pages leave out is there on a writable dashboard
    for page in ["dead?queue=demo", "queues", &format!("jobs/{pending}")] {
        browser.goto(&format!("{writable}{page}")).await.unwrap();
        assert!(
            !actions_shown(&browser).await.is_empty(),
            "/{page} of a writable dashboard shows no action"
        );
    }
}

/// Runs each scenario on every backend.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $test() { super::in_browser(super::Backend::Sqlite, super::$test) })*
        }
        mod redis {
            $(#[test] fn $test() { super::in_browser(super::Backend::Redis, super::$test) })*
        }
    };
}

on_every_backend!(
    counts_change_as_jobs_run,
    a_dead_job_retried_from_the_page_ends_done,
    a_paused_queue_stops_being_claimed,
    the_read_only_mode_shows_no_button,
);

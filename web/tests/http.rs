//! The dashboard over HTTP: requests through its router, as a browser or a
//! forger would send them, on real backends: memory, an SQLite file, and
//! the Redis at `REDIS_URL` in a namespace of its own, and for the estimated
//! counts the PostgreSQL at `PG_DATABASE_URL` (each skipped with a notice
//! when unreachable, unless `OUTBAND_REQUIRE_SERVERS=1`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use outband::{BaseQueue, JobId, JobState, MemoryQueue, NewJob, Outcome, codec, queue_command};
use outband_testkit::{redis_url, skip_or_fail, unique_name, with_param};
use outband_web::Dashboard;
use tower::ServiceExt;

const HOST: &str = "dash.test";
const ORIGIN: &str = "http://dash.test";
const XSS: &str = "<script>alert(1)</script>";

/// A periodic command, for the periodic page.
#[outband::periodic_command(name = "web_test::hourly", cron = "0 0 * * * *", queue = "web")]
fn hourly() {}

/// Echoes its text: its arguments and result show as JSON on a job's page.
#[queue_command(name = "web_test::echo", queue = "web")]
fn echo(text: String) -> Result<String, String> {
    Ok(text)
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Sqlite,
    Redis,
}

const KINDS: [Kind; 3] = [Kind::Memory, Kind::Sqlite, Kind::Redis];

/// A backend for one test, with what must outlive it.
struct World {
    backend: Arc<dyn BaseQueue>,
    queue: String,
    /// The Redis namespace to delete at the end, and its URL.
    namespace: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some((url, namespace)) = &self.namespace
            && let Ok(queue) = outband_redis::RedisQueue::connect(url)
        {
            let _ = outband_redis::delete_namespace(&queue, namespace);
        }
    }
}

impl World {
    fn new(kind: Kind) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mut namespace = None;
        let backend: Arc<dyn BaseQueue> = match kind {
            Kind::Memory => Arc::new(MemoryQueue::new()),
            Kind::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
                Arc::new(outband_diesel::DatabaseQueue::open(&url).unwrap())
            }
            Kind::Redis => {
                let base = redis_url();
                let name = unique_name("outband-web-test-");
                let url = with_param(&base, "namespace", &name);
                let backend = match outband_redis::RedisQueue::connect(&url) {
                    Ok(backend) => backend,
                    Err(error) => return skip_or_fail(&format!("Redis at {base}"), &error),
                };
                if let Err(error) = backend.now() {
                    return skip_or_fail(&format!("Redis at {base}"), &error);
                }
                namespace = Some((url, name));
                Arc::new(backend)
            }
        };
        Some(Self {
            backend,
            queue: "web".to_owned(),
            namespace,
            _dir: dir,
        })
    }

    fn enqueue(&self, text: &str) -> JobId {
        let args = codec::encode(&(text.to_owned(),)).unwrap();
        self.backend
            .enqueue(NewJob::new("web_test::echo", args).queue(&self.queue))
            .unwrap()
    }

    /// A job that ran once and ended `dead` with `error`.
    fn dead(&self, text: &str, error: &str) -> JobId {
        let id = self.enqueue(text);
        self.finish(
            id,
            Outcome::Dead {
                error: error.to_owned(),
            },
        );
        id
    }

    /// Claims jobs until `id` is claimed, then completes it with `outcome`;
    /// the others claimed on the way are released.
    fn finish(&self, id: JobId, outcome: Outcome) {
        let claimed = self
            .backend
            .claim(&self.queue, 1_000, Duration::from_secs(60))
            .unwrap();
        let mut outcome = Some(outcome);
        for claim in claimed {
            let this = if claim.job.id == id {
                outcome.take().unwrap()
            } else {
                Outcome::Release
            };
            self.backend.complete(&claim.lease, this).unwrap();
        }
        assert!(outcome.is_none(), "job {id} was not claimed");
    }

    fn state(&self, id: JobId) -> JobState {
        self.backend.job(id).unwrap().unwrap().state
    }

    fn dashboard(&self) -> Dashboard {
        Dashboard::new(self.backend.clone())
    }
}

/// A browser: its cookies, sent back with each request.
struct Browser {
    router: Router,
    cookies: Vec<String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    fn location(&self) -> &str {
        self.headers[header::LOCATION].to_str().unwrap()
    }
}

impl Browser {
    fn new(router: Router) -> Self {
        Self {
            router,
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            self.cookies.push(pair);
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST);
        if !self.cookies.is_empty() {
            builder = builder.header(header::COOKIE, self.cookies.join("; "));
        }
        builder
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self.request("GET", path).body(Body::empty()).unwrap();
        self.send(request).await
    }

    /// A form posted from `origin` (none when `None`).
    async fn post_from(
        &mut self,
        origin: Option<&str>,
        path: &str,
        form: &[(&str, &str)],
    ) -> Answer {
        let mut body = form_body(form);
        if body.is_empty() {
            body.push(' ');
        }
        let mut builder = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        self.send(builder.body(Body::from(body)).unwrap()).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.post_from(Some(ORIGIN), path, form).await
    }
}

fn form_body(form: &[(&str, &str)]) -> String {
    let mut serializer = String::new();
    for (key, value) in form {
        if !serializer.is_empty() {
            serializer.push('&');
        }
        serializer.push_str(key);
        serializer.push('=');
        serializer.extend(value.bytes().map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        }));
    }
    serializer
}

/// Runs `test` on every backend that is there.
async fn each_backend<F, Fut>(test: F)
where
    F: Fn(World) -> Fut,
    Fut: Future<Output = ()>,
{
    for kind in KINDS {
        let world = tokio::task::spawn_blocking(move || World::new(kind))
            .await
            .unwrap();
        if let Some(world) = world {
            eprintln!("on {kind:?}");
            test(world).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_show_the_counts_by_state() {
    each_backend(|world| async move {
        for n in 0..3 {
            world.enqueue(&format!("pending {n}"));
        }
        world.dead("gone", "it broke");
        let done = world.enqueue("finished");
        world.finish(
            done,
            Outcome::Done {
                result: Some(codec::encode(&"finished".to_owned()).unwrap()),
                duration: Duration::from_millis(12),
            },
        );
        let mut browser = Browser::new(world.dashboard().router());

        let overview = browser.get("/").await;
        assert_eq!(overview.status, StatusCode::OK);
        for (state, count) in [("pending", 3), ("running", 0), ("done", 1), ("dead", 1)] {
            let cell = format!("data-queue=\"web\" data-state=\"{state}\"><a href=\"/jobs?queue=web&amp;state={state}\">{count}</a>");
            assert!(overview.body.contains(&cell), "{state} {count}: {}", overview.body);
        }
        assert!(overview.body.contains("src=\"/assets/live.js\""));

        let json = browser.get("/api/overview").await;
        assert_eq!(json.status, StatusCode::OK);
        assert!(json.body.contains("\"name\":\"web\",\"pending\":3"), "{}", json.body);

        let pending = browser.get("/jobs?queue=web&state=pending").await;
        assert_eq!(pending.body.matches("<td>web_test::echo</td>").count(), 3);
        let job = browser.get(&format!("/jobs/{done}")).await;
        assert!(job.body.contains("{&quot;text&quot;: &quot;finished&quot;}"), "{}", job.body);
        assert!(job.body.contains("12.0 ms"), "{}", job.body);

        // an id in the filter goes to its job
        let by_id = browser.get(&format!("/jobs?id={done}")).await;
        assert_eq!(by_id.status, StatusCode::SEE_OTHER);
        assert_eq!(by_id.location(), format!("/jobs/{done}"));

        let dead = browser.get("/dead?queue=web").await;
        assert!(dead.body.contains("it broke"));
        assert_eq!(browser.get("/periodic").await.status, StatusCode::OK);
        assert_eq!(browser.get("/queues").await.status, StatusCode::OK);
        assert_eq!(browser.get("/assets/style.css").await.status, StatusCode::OK);
        assert_eq!(browser.get("/nowhere").await.status, StatusCode::NOT_FOUND);
    })
    .await;
}

/// The pending count the overview's JSON gives for the queue `web`.
async fn pending_shown(browser: &mut Browser) -> (u64, String) {
    let body = browser.get("/api/overview").await.body;
    let number_after = |label: &str| {
        let at = body
            .find(label)
            .unwrap_or_else(|| panic!("{label}: {body}"))
            + label.len();
        body[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    };
    let pending = number_after("\"name\":\"web\",\"pending\":");
    (pending.parse().unwrap(), number_after("\"time\":"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_shows_its_last_reading_and_reads_again_behind_it() {
    each_backend(|world| async move {
        world.enqueue("one");
        let mut browser = Browser::new(world.dashboard().router());
        let page = browser.get("/").await;
        assert!(
            page.body.contains("Counts as of <span id=\"counts-at\">"),
            "{}",
            page.body
        );
        let (pending, first) = pending_shown(&mut browser).await;
        assert_eq!(pending, 1, "a new router's first reading is taken then");

        world.enqueue("two");
        // within the second of the reading: that reading
        assert_eq!(pending_shown(&mut browser).await, (1, first.clone()));
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        // past it: the same reading at once, a new one taken behind it
        assert_eq!(pending_shown(&mut browser).await, (1, first.clone()));
        let started = std::time::Instant::now();
        loop {
            let (pending, time) = pending_shown(&mut browser).await;
            if time != first {
                assert_eq!(pending, 2, "the new reading counts the new job");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no new reading"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_are_paged_and_filtered_by_ordering_key() {
    each_backend(|world| async move {
        let args = |n: u32| codec::encode(&(format!("job {n}"),)).unwrap();
        let jobs: Vec<NewJob> = (0..120)
            .map(|n| {
                let job = NewJob::new("web_test::echo", args(n)).queue("web");
                if n % 40 == 0 { job.key("rare") } else { job }
            })
            .collect();
        world.backend.enqueue_many(jobs).unwrap();
        let mut browser = Browser::new(world.dashboard().router());
        let first = browser.get("/jobs?queue=web").await;
        assert_eq!(first.body.matches("<td>web_test::echo</td>").count(), 50);
        let older = first.body.find("older »").expect("a next page");
        let href_at = first.body[..older].rfind("href=\"").unwrap() + 6;
        let href = first.body[href_at..older]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        let second = browser.get(&href).await;
        assert_eq!(
            second.body.matches("<td>web_test::echo</td>").count(),
            50,
            "{href}"
        );
        let keyed = browser.get("/jobs?queue=web&key=rare").await;
        assert_eq!(
            keyed.body.matches("<td>rare</td>").count(),
            3,
            "{}",
            keyed.body
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_job_retried_from_the_page_is_pending() {
    each_backend(|world| async move {
        let id = world.dead("again", "first try failed");
        let mut browser = Browser::new(world.dashboard().router());
        let page = browser.get("/dead?queue=web").await;
        let csrf = page.csrf();
        let id_text = id.0.to_string();
        let done = browser
            .post(
                "/dead/retry",
                &[
                    ("csrf", &csrf),
                    ("back", "/dead?queue=web"),
                    ("one", &id_text),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert!(
            done.location()
                .starts_with("/dead?queue=web&note=Retried+1"),
            "{}",
            done.location()
        );
        assert_eq!(world.state(id), JobState::Pending);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ticked_dead_jobs_are_retried_or_deleted_together_and_all_of_a_queue() {
    each_backend(|world| async move {
        let ids: Vec<JobId> = (0..4)
            .map(|n| world.dead(&format!("d{n}"), "boom"))
            .collect();
        let mut browser = Browser::new(world.dashboard().router());
        let csrf = browser.get("/dead?queue=web").await.csrf();
        let (a, b) = (ids[0].0.to_string(), ids[1].0.to_string());
        let done = browser
            .post("/dead/delete", &[("csrf", &csrf), ("id", &a), ("id", &b)])
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        assert!(world.backend.job(ids[0]).unwrap().is_none());
        assert!(world.backend.job(ids[1]).unwrap().is_none());
        assert_eq!(world.state(ids[2]), JobState::Dead);

        let done = browser
            .post("/dead/retry-all", &[("csrf", &csrf), ("queue", "web")])
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        assert_eq!(world.state(ids[2]), JobState::Pending);
        assert_eq!(world.state(ids[3]), JobState::Pending);

        let again = world.dead("d4", "boom");
        let ask = browser.get("/dead/delete-all?queue=web").await;
        assert!(
            ask.body.contains("Delete the 1 dead jobs of queue web?"),
            "{}",
            ask.body
        );
        let unconfirmed = browser
            .post("/dead/delete-all", &[("csrf", &csrf), ("queue", "web")])
            .await;
        assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
        assert_eq!(world.state(again), JobState::Dead);
        browser
            .post(
                "/dead/delete-all",
                &[("csrf", &csrf), ("queue", "web"), ("confirm", "yes")],
            )
            .await;
        assert!(world.backend.job(again).unwrap().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_without_the_token_or_from_another_origin_changes_nothing() {
    each_backend(|world| async move {
        let id = world.dead("stay", "dead it stays");
        let id_text = id.0.to_string();
        let mut browser = Browser::new(world.dashboard().router());
        let csrf = browser.get("/dead?queue=web").await.csrf();

        let no_token = browser.post("/dead/retry", &[("one", &id_text)]).await;
        assert_eq!(no_token.status, StatusCode::FORBIDDEN);
        let wrong = browser
            .post("/dead/retry", &[("csrf", "00ff"), ("one", &id_text)])
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        let foreign = browser
            .post_from(
                Some("http://evil.test"),
                "/dead/retry",
                &[("csrf", &csrf), ("one", &id_text)],
            )
            .await;
        assert_eq!(foreign.status, StatusCode::FORBIDDEN);
        let no_origin = browser
            .post_from(None, "/dead/retry", &[("csrf", &csrf), ("one", &id_text)])
            .await;
        assert_eq!(no_origin.status, StatusCode::FORBIDDEN);
        // another browser's session: its own cookie, this page's token
        let mut other = Browser::new(browser.router.clone());
        other.get("/").await;
        let stolen = other
            .post("/dead/retry", &[("csrf", &csrf), ("one", &id_text)])
            .await;
        assert_eq!(stolen.status, StatusCode::FORBIDDEN);
        let paused = browser.post("/queues/pause", &[("queue", "web")]).await;
        assert_eq!(paused.status, StatusCode::FORBIDDEN);

        assert_eq!(world.state(id), JobState::Dead);
        assert!(world.backend.paused().unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queues_pause_resume_and_flush_from_the_queues_page() {
    each_backend(|world| async move {
        world.enqueue("one");
        world.enqueue("two");
        let mut browser = Browser::new(world.dashboard().router());
        let page = browser.get("/queues").await;
        assert!(page.body.contains(">Pause</button>"));
        let csrf = page.csrf();
        let paused = browser
            .post("/queues/pause", &[("csrf", &csrf), ("queue", "web")])
            .await;
        assert_eq!(paused.status, StatusCode::SEE_OTHER);
        assert_eq!(world.backend.paused().unwrap(), vec!["web".to_owned()]);
        let page = browser.get("/queues").await;
        assert!(page.body.contains(">Resume</button>") && page.body.contains("paused"));
        browser
            .post("/queues/resume", &[("csrf", &csrf), ("queue", "web")])
            .await;
        assert!(world.backend.paused().unwrap().is_empty());

        let ask = browser.get("/queues/flush?queue=web").await;
        assert!(
            ask.body.contains("Delete the 2 pending jobs of queue web?"),
            "{}",
            ask.body
        );
        let unconfirmed = browser
            .post("/queues/flush", &[("csrf", &csrf), ("queue", "web")])
            .await;
        assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
        assert_eq!(world.backend.len("web").unwrap(), 2);
        let flushed = browser
            .post(
                "/queues/flush",
                &[("csrf", &csrf), ("queue", "web"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(flushed.status, StatusCode::SEE_OTHER);
        assert_eq!(world.backend.len("web").unwrap(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_shows_no_action_and_refuses_every_post() {
    each_backend(|world| async move {
        let id = world.dead("kept", "dead");
        world.enqueue("waiting");
        let mut browser = Browser::new(world.dashboard().read_only(true).router());
        for path in [
            "/",
            "/jobs?queue=web",
            "/dead?queue=web",
            "/queues",
            "/periodic",
            &format!("/jobs/{id}"),
            "/queues/flush?queue=web",
        ] {
            let page = browser.get(path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            assert!(
                !page.body.contains("method=\"post\""),
                "{path}: {}",
                page.body
            );
            assert!(
                !page.body.contains("<button type=\"submit\" name=\"one\""),
                "{path}"
            );
            assert!(!page.body.contains("name=\"csrf\""), "{path}");
        }
        // even with a valid token from a writable dashboard's page, a POST is refused
        let id_text = id.0.to_string();
        let refused = browser
            .post("/dead/retry", &[("csrf", "x"), ("one", &id_text)])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let refused = browser.post("/queues/pause", &[("queue", "web")]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(world.state(id), JobState::Dead);
        assert!(world.backend.paused().unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_token_is_required_when_set() {
    let world = World::new(Kind::Memory).unwrap();
    let router = world.dashboard().token(Some("s3cret".to_owned())).router();
    let mut browser = Browser::new(router.clone());
    assert_eq!(browser.get("/").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        browser.get("/?token=wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        browser.get("/api/overview").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        browser.get("/assets/style.css").await.status,
        StatusCode::UNAUTHORIZED
    );

    let login = browser.get("/jobs?token=s3cret&state=dead").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login.body.contains("content=\"0; url=/jobs?state=dead\""),
        "{}",
        login.body
    );
    assert!(!login.body.contains("s3cret"));
    let cookie = login.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("s3cret"),
        "the cookie holds no token: {cookie}"
    );
    assert_eq!(browser.get("/jobs?state=dead").await.status, StatusCode::OK);

    let bearer = Request::get("/")
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        router.clone().oneshot(bearer).await.unwrap().status(),
        StatusCode::OK
    );
    let wrong = Request::get("/")
        .header(header::AUTHORIZATION, "Bearer nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        router.oneshot(wrong).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_from_a_job_can_inject_script() {
    each_backend(|world| async move {
        // in the arguments, the error, the result, the ordering key, and a
        // command and a queue of those names
        let id = world.dead(XSS, XSS);
        let done = world.enqueue(XSS);
        world.finish(
            done,
            Outcome::Done {
                result: Some(codec::encode(&XSS.to_owned()).unwrap()),
                duration: Duration::from_millis(1),
            },
        );
        let args = codec::encode(&(XSS.to_owned(),)).unwrap();
        let odd = world
            .backend
            .enqueue(NewJob::new(XSS, args).queue(XSS).key(XSS))
            .unwrap();
        let mut browser = Browser::new(world.dashboard().router());
        let response = browser.get("/").await;
        let csp = response.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        let xss_query: String = form_urlencoded(XSS);
        for path in [
            "/".to_owned(),
            "/api/overview".to_owned(),
            format!("/jobs/{id}"),
            format!("/jobs/{done}"),
            format!("/jobs/{odd}"),
            "/jobs?queue=web&state=dead".to_owned(),
            format!("/jobs?queue={xss_query}&key={xss_query}"),
            format!("/jobs?queue={xss_query}&command={xss_query}&id={xss_query}"),
            "/dead?queue=web".to_owned(),
            "/queues".to_owned(),
            format!("/queues/flush?queue={xss_query}"),
            format!("/queues?note={xss_query}"),
        ] {
            let page = browser.get(&path).await;
            if path == "/api/overview" {
                // data for the script, which shows it as text; never a page
                let kind = page.headers[header::CONTENT_TYPE].to_str().unwrap();
                assert_eq!(kind, "application/json");
                assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            } else {
                assert!(!page.body.contains("<script>"), "{path}: {}", page.body);
                let only_ours = page.body.matches("<script").count()
                    == page
                        .body
                        .matches("<script src=\"/assets/live.js\" defer></script>")
                        .count();
                assert!(only_ours, "{path}: {}", page.body);
            }
        }
        let error = browser.get(&format!("/jobs/{id}")).await;
        assert!(
            error.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            error.body
        );
        let result = browser.get(&format!("/jobs/{done}")).await;
        assert!(
            result
                .body
                .contains("&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"),
            "{}",
            result.body
        );
    })
    .await;
}

fn form_urlencoded(text: &str) -> String {
    form_body(&[("x", text)])[2..].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_in_an_app_its_links_cookies_and_forms_use_the_base_path() {
    let world = World::new(Kind::Memory).unwrap();
    let id = world.dead("nested", "boom");
    let dashboard = world.dashboard().base_path("/outband/");
    let app = Router::new()
        .route("/", axum::routing::get(|| async { "the app" }))
        .nest("/outband", dashboard.router());
    let mut browser = Browser::new(app);
    assert_eq!(browser.get("/").await.body, "the app");
    let overview = browser.get("/outband").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("href=\"/outband/assets/style.css\""));
    assert!(
        overview
            .body
            .contains("data-poll=\"/outband/api/overview\"")
    );
    let cookie = overview.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("Path=/outband;"), "{cookie}");

    let dead = browser.get("/outband/dead?queue=web").await;
    assert!(dead.body.contains("action=\"/outband/dead/retry\""));
    let id_text = id.0.to_string();
    let retried = browser
        .post(
            "/outband/dead/retry",
            &[
                ("csrf", &dead.csrf()),
                ("back", "/dead?queue=web"),
                ("one", &id_text),
            ],
        )
        .await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER);
    assert!(
        retried
            .location()
            .starts_with("/outband/dead?queue=web&note=")
    );
    assert_eq!(world.state(id), JobState::Pending);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consumers_page_shows_who_is_alive_and_who_is_gone() {
    each_backend(|world| async move {
        let mut web = outband::ConsumerInfo::this_process(vec!["web".to_owned()], 4, 16);
        web.host = format!("web-host-{XSS}");
        web.running = 3;
        let mut old = outband::ConsumerInfo::this_process(vec!["mail".to_owned()], 1, 0);
        old.id = format!("{}-old", old.id);
        old.host = "old-host".to_owned();
        let backend = world.backend.clone();
        tokio::task::spawn_blocking(move || {
            backend.register_consumer(&web, Duration::from_secs(30))?;
            backend.register_consumer(&old, Duration::from_millis(1))
        })
        .await
        .unwrap()
        .unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await;

        let mut browser = Browser::new(world.dashboard().router());
        let page = browser.get("/consumers").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("1 alive, 1 gone."), "{}", page.body);
        let alive = page.body.find("web-host-").unwrap();
        let gone = page.body.find("old-host").unwrap();
        assert!(alive < gone, "the alive consumer comes first");
        assert!(page.body.contains("<td class=\"alive\">alive</td>"));
        assert!(page.body.contains("<td class=\"gone\">gone</td>"));
        assert!(
            page.body
                .contains(&format!("<td>{}</td>", std::process::id()))
        );
        assert!(
            page.body
                .contains("<td>web</td><td>4</td><td>16</td><td>3</td>"),
            "{}",
            page.body
        );
        assert!(!page.body.contains(XSS), "the host is escaped");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_serves_metrics_behind_its_token() {
    each_backend(|world| async move {
        world.enqueue("one");
        world.enqueue("two");
        world.dead("three", "it broke");
        let mut browser = Browser::new(world.dashboard().token(Some("s3cret".into())).router());
        assert_eq!(
            browser.get("/metrics").await.status,
            StatusCode::UNAUTHORIZED
        );
        let request = browser
            .request("GET", "/metrics")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::empty())
            .unwrap();
        let metrics = browser.send(request).await;
        assert_eq!(metrics.status, StatusCode::OK);
        assert!(
            metrics.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text"),
        );
        for line in [
            "outband_jobs{queue=\"web\",state=\"pending\"} 2",
            "outband_jobs{queue=\"web\",state=\"dead\"} 1",
            "outband_jobs{queue=\"web\",state=\"running\"} 0",
            "outband_queue_paused{queue=\"web\"} 0",
            "outband_consumers_alive 0",
            "# TYPE outband_enqueue_seconds histogram",
            "# EOF",
        ] {
            assert!(metrics.body.contains(line), "{line}: {}", metrics.body);
        }
    })
    .await;
}

/// Above the bound the pages count exactly, PostgreSQL gives its planner's
/// estimate: every page marks it `≈`, and the JSON lists the state.
#[tokio::test(flavor = "multi_thread")]
async fn counts_above_the_bound_are_marked_as_estimates() {
    let backend = tokio::task::spawn_blocking(|| {
        let url = outband_testkit::pg_url();
        let opened = outband_diesel::DatabaseQueue::builder(&url)
            .prefix(format!("{}_", unique_name("web")))
            .temporary(true)
            .open();
        let backend = match opened {
            Ok(backend) => backend,
            Err(error) => return skip_or_fail(&format!("PostgreSQL at {url}"), &error),
        };
        let args = codec::encode(&("counted".to_owned(),)).unwrap();
        let jobs = (0..40)
            .map(|_| NewJob::new("web_test::echo", args.clone()).queue("web"))
            .collect();
        backend.enqueue_many(jobs).unwrap();
        let claimed = backend.claim("web", 1, Duration::from_secs(60)).unwrap();
        let error = "failed".to_owned();
        backend
            .complete(&claimed[0].lease, Outcome::Dead { error })
            .unwrap();
        Some(Arc::new(backend))
    })
    .await
    .unwrap();
    let Some(backend) = backend else {
        return;
    };

    let estimating = Dashboard::new(backend.clone()).exact_counts_up_to(10);
    let mut browser = Browser::new(estimating.router());
    let overview = browser.get("/").await.body;
    let cell = |state: &str| {
        let at = overview
            .find(&format!("data-state=\"{state}\">"))
            .unwrap_or_else(|| panic!("{state}: {overview}"));
        let link = &overview[at..];
        let text = &link[link.find('>').unwrap() + 1..];
        let text = &text[text.find('>').unwrap() + 1..];
        text[..text.find('<').unwrap()].to_owned()
    };
    let pending = cell("pending");
    let estimate: u64 = pending
        .strip_prefix("≈ ")
        .unwrap_or_else(|| panic!("pending, estimated: {pending}"))
        .parse()
        .unwrap();
    assert!(estimate > 10, "an estimate is above the bound: {estimate}");
    assert_eq!(cell("dead"), "1", "a count under the bound is exact");
    let json = browser.get("/api/overview").await.body;
    assert!(json.contains("\"estimated\":[\"pending\"]"), "{json}");
    assert!(browser.get("/queues").await.body.contains("≈ "));
    let flush = browser.get("/queues/flush?queue=web").await.body;
    assert!(flush.contains("Delete the ≈ "), "{flush}");

    // the default bound counts these exactly
    let mut browser = Browser::new(Dashboard::new(backend).router());
    let overview = browser.get("/").await.body;
    assert!(overview.contains(">39</a>"), "{overview}");
    assert!(!overview.contains('≈'));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_periodic_page_shows_the_last_tick_enqueued() {
    each_backend(|world| async move {
        let mut browser = Browser::new(world.dashboard().router());
        let page = browser.get("/periodic").await.body;
        let row = |page: &str| {
            let at = page
                .find("<td>web_test::hourly</td>")
                .unwrap_or_else(|| panic!("{page}"));
            page[at..page[at..].find("</tr>").unwrap() + at].to_owned()
        };
        assert!(row(&page).contains("<td>never</td>"), "{}", row(&page));
        assert!(row(&page).contains("<code>0 0 * * * *</code>"));

        let tick = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let backend = world.backend.clone();
        tokio::task::spawn_blocking(move || {
            assert!(backend.claim_tick("web_test::hourly", tick).unwrap());
            assert!(
                backend
                    .claim_tick("web_test::hourly", tick - Duration::from_secs(3_600))
                    .unwrap()
            );
        })
        .await
        .unwrap();
        let page = browser.get("/periodic").await.body;
        assert!(
            row(&page).contains("<td>2027-01-15 08:00:00 UTC</td>"),
            "the latest tick claimed: {}",
            row(&page)
        );
    })
    .await;
}

//! The pages and the actions: each handler reads the backend on the
//! blocking pool, then renders with maud, which escapes what it shows.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use croner::Cron;
use maud::{Markup, html};
use outband::{BaseQueue, Cancellation, Job, JobId, JobQuery, JobState, QueueStats};
use serde::{Deserialize, Serialize};

use crate::Shared;
use crate::security::Session;
use crate::view::{Nav, ago, csrf, link, millis, page, path, time};

/// Jobs on one page of the jobs listing and of the dead letters.
const PAGE: usize = 50;
/// The most backend pages one page of the jobs listing reads, when its
/// filter matches few of the jobs they hold.
const MAX_PAGES: usize = 10;

/// Runs `work` on the backend on tokio's blocking pool: backend calls block.
async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&dyn BaseQueue) -> Result<T, outband::Error> + Send + 'static,
) -> Result<T, Response> {
    let backend = shared.backend.clone();
    match tokio::task::spawn_blocking(move || work(&*backend)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            let status = if matches!(error, outband::Error::Unavailable(_)) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            Err(problem(
                shared,
                status,
                &format!("the backend failed: {error}"),
            ))
        }
        Err(error) => Err(problem(
            shared,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the backend call did not finish: {error}"),
        )),
    }
}

/// A page that says what went wrong.
fn problem(shared: &Shared, status: StatusCode, message: &str) -> Response {
    let body = html! { p class="problem" { (message) } };
    (
        status,
        page(shared, Nav::Overview, "Something went wrong", None, &body),
    )
        .into_response()
}

/// How long the list of queues holding jobs is reused: a backend may have
/// to look through its jobs to find them, and the list changes rarely.
const QUEUES_FOR: Duration = Duration::from_secs(10);

/// The queues to show: those holding jobs, as [`BaseQueue::queues`] said
/// at most [`QUEUES_FOR`] ago, and the paused ones now, sorted.
fn queue_names(shared: &Shared, backend: &dyn BaseQueue) -> Result<Vec<String>, outband::Error> {
    let cached = match shared.queues.lock() {
        Ok(cache) => cache
            .as_ref()
            .filter(|(at, _)| at.elapsed() < QUEUES_FOR)
            .map(|(_, names)| names.clone()),
        Err(_) => None,
    };
    let names = match cached {
        Some(names) => names,
        None => {
            let names = backend.queues()?;
            if let Ok(mut cache) = shared.queues.lock() {
                *cache = Some((Instant::now(), names.clone()));
            }
            names
        }
    };
    outband::admin::with_paused(backend, names)
}

/// The queues to suggest in a page's queue field, which takes any name:
/// the list [`queue_names`] keeps while it is fresh; otherwise, when the
/// page names its queue, the queues of the registered commands, the paused
/// ones and that one, so that a page of one queue never waits for the look
/// for all of them; else [`queue_names`].
fn suggested_queues(
    shared: &Shared,
    backend: &dyn BaseQueue,
    given: Option<&str>,
) -> Result<Vec<String>, outband::Error> {
    let fresh = shared.queues.lock().ok().and_then(|cache| {
        cache
            .as_ref()
            .filter(|(at, _)| at.elapsed() < QUEUES_FOR)
            .map(|(_, names)| names.clone())
    });
    let names = match (fresh, given) {
        (Some(mut names), given) => {
            names.extend(given.map(str::to_owned));
            names
        }
        (None, Some(given)) => {
            let mut names: Vec<String> = shared
                .registry
                .map(|registry| registry.queues().into_iter().map(str::to_owned).collect())
                .unwrap_or_default();
            names.push(given.to_owned());
            names
        }
        (None, None) => return queue_names(shared, backend),
    };
    outband::admin::with_paused(backend, names)
}

/// A text field of a query, `None` when left empty.
fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A 303 to `to` (a path of the dashboard), with `note`, unless empty,
/// shown on arrival.
fn redirect(shared: &Shared, to: &str, note: &str) -> Response {
    // only a path of this dashboard: never another host
    let to = if to.starts_with('/') && !to.starts_with("//") && !to.contains('\\') {
        to
    } else {
        "/"
    };
    let mut location = path(shared, to);
    if !note.is_empty() {
        let separator = if to.contains('?') { '&' } else { '?' };
        let note: String = form_urlencoded::byte_serialize(note.as_bytes()).collect();
        location = format!("{location}{separator}note={note}");
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// The note a redirect carried, at most a line.
#[derive(Deserialize, Default)]
pub(crate) struct NoteParam {
    note: Option<String>,
}

impl NoteParam {
    fn text(&self) -> Option<&str> {
        given(self.note.as_ref()).map(|note| note.get(..200).unwrap_or(note))
    }
}

/// A form body's fields, in order, repeated ones included.
fn fields(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

// ---- overview ----

/// One queue's line of the overview and of its JSON.
#[derive(Serialize)]
pub(crate) struct QueueLine {
    name: String,
    pending: u64,
    running: u64,
    done: u64,
    dead: u64,
    cancelled: u64,
    throughput: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    paused: bool,
    /// The states whose counts are estimates.
    estimated: Vec<&'static str>,
}

impl QueueLine {
    fn new(name: String, stats: &QueueStats) -> Self {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        Self {
            name,
            pending: stats.pending,
            running: stats.running,
            done: stats.done,
            dead: stats.dead,
            cancelled: stats.cancelled,
            throughput: stats.throughput,
            p50_ms: ms(stats.p50_run_time),
            p99_ms: ms(stats.p99_run_time),
            paused: stats.paused,
            estimated: stats.estimated.iter().map(|state| state.as_str()).collect(),
        }
    }
}

/// A count as the pages show it: `≈` before an estimate.
fn count(n: u64, estimated: bool) -> String {
    if estimated {
        format!("≈ {n}")
    } else {
        n.to_string()
    }
}

/// What `/api/overview` answers: the time of the look, in milliseconds
/// since the epoch, and each queue's line.
#[derive(Serialize)]
pub(crate) struct Overview {
    time: u128,
    queues: Vec<QueueLine>,
}

/// How long one reading of every queue's counts serves the overview as it
/// is: the pages and polls of several browsers within it share one round
/// of [`BaseQueue::stats`] calls, each of which counts a queue's jobs.
const OVERVIEW_FOR: Duration = Duration::from_secs(1);

/// How old a reading may be and still be shown, while a newer one is taken
/// in the background; an older one is read again before the page answers.
const SHOWN_FOR: Duration = Duration::from_secs(30);

/// The overview's readings: the last one and when it was taken, and whether
/// a newer one is being taken in the background.
#[derive(Default)]
pub(crate) struct Readings {
    last: Option<(Instant, Arc<Overview>)>,
    refreshing: bool,
}

/// Every queue's line, read now.
async fn read_counts(shared: &Arc<Shared>) -> Result<Overview, Response> {
    let cache = shared.clone();
    blocking(shared, move |backend| {
        let queues = queue_names(&cache, backend)?
            .into_iter()
            .map(|name| {
                let stats = backend.estimate_stats(&name, cache.exact_up_to)?;
                Ok(QueueLine::new(name, &stats))
            })
            .collect::<Result<Vec<_>, outband::Error>>()?;
        let time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Ok(Overview { time, queues })
    })
    .await
}

/// Keeps `overview` as the last reading, unless a newer one is kept.
fn keep(shared: &Shared, at: Instant, overview: &Arc<Overview>) {
    if let Ok(mut readings) = shared.overview.lock()
        && readings.last.as_ref().is_none_or(|(kept, _)| *kept < at)
    {
        readings.last = Some((at, overview.clone()));
    }
}

/// Takes a reading in the background, for the requests that come after it.
fn refresh(shared: &Arc<Shared>) {
    /// Says that no reading is under way when the background reading ends
    /// or is dropped, whichever way it ends.
    struct Refreshing(Arc<Shared>);
    impl Drop for Refreshing {
        fn drop(&mut self) {
            if let Ok(mut readings) = self.0.overview.lock() {
                readings.refreshing = false;
            }
        }
    }
    let refreshing = Refreshing(shared.clone());
    tokio::spawn(async move {
        let shared = &refreshing.0;
        let at = Instant::now();
        match read_counts(shared).await {
            Ok(overview) => keep(shared, at, &Arc::new(overview)),
            Err(_) => log::warn!("the overview's counts could not be read again"),
        }
    });
}

/// Every queue's line: the last reading when it is under [`SHOWN_FOR`]
/// old, at once, with a new reading started in the background when it is
/// [`OVERVIEW_FOR`] old or more and none is under way. Otherwise a reading
/// taken now, which requests that come while it is taken wait for and
/// share.
async fn read_overview(shared: &Arc<Shared>) -> Result<Arc<Overview>, Response> {
    if let Some(overview) = shown(shared) {
        return Ok(overview);
    }
    let _reading = shared.reading.lock().await;
    // a reading another request took while this one waited
    if let Some(overview) = shown(shared) {
        return Ok(overview);
    }
    let at = Instant::now();
    let overview = Arc::new(read_counts(shared).await?);
    keep(shared, at, &overview);
    Ok(overview)
}

/// The last reading, when it may be shown, and a reading started in the
/// background when it is due.
fn shown(shared: &Arc<Shared>) -> Option<Arc<Overview>> {
    let mut readings = shared.overview.lock().ok()?;
    let (at, overview) = readings.last.clone()?;
    let age = at.elapsed();
    if age >= SHOWN_FOR {
        return None;
    }
    if age >= OVERVIEW_FOR && !readings.refreshing {
        readings.refreshing = true;
        refresh(shared);
    }
    Some(overview)
}

/// `/`: per queue, counts by state, jobs/s, run times, and the live chart.
pub(crate) async fn overview(State(shared): State<Arc<Shared>>) -> Response {
    let overview = match read_overview(&shared).await {
        Ok(overview) => overview,
        Err(response) => return response,
    };
    let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
    let read_at = i64::try_from(overview.time)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or_else(String::new, |at| at.format("%H:%M:%S UTC").to_string());
    let body = html! {
        p class="muted" { "Counts as of " span id="counts-at" { (read_at) } "." }
        @if overview.queues.is_empty() {
            p class="muted" { "No queue holds a job yet." }
        } @else {
            table {
                thead { tr {
                    th { "queue" }
                    @for state in JobState::ALL { th class="n" { (state.as_str()) } }
                    th class="n" { "done/s (last minute)" }
                    th class="n" { "p50" }
                    th class="n" { "p99" }
                    th { "claims" }
                } }
                tbody {
                    @for line in &overview.queues {
                        tr {
                            td { a href=(link(&shared, "/jobs", &[("queue", &line.name)])) { (line.name) } }
                            @for (state, n) in [
                                (JobState::Pending, line.pending),
                                (JobState::Running, line.running),
                                (JobState::Done, line.done),
                                (JobState::Dead, line.dead),
                                (JobState::Cancelled, line.cancelled),
                            ] {
                                td class="n" data-queue=(line.name) data-state=(state.as_str()) {
                                    a href=(link(&shared, "/jobs", &[("queue", &line.name), ("state", state.as_str())])) {
                                        (count(n, line.estimated.contains(&state.as_str())))
                                    }
                                }
                            }
                            td class="n" { (format!("{:.2}", line.throughput)) }
                            td class="n" { (ms(line.p50_ms)) }
                            td class="n" { (ms(line.p99_ms)) }
                            td {
                                @if line.paused { span class="paused" { "paused" } } @else { span class="on" { "on" } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Throughput" }
        p class="legend" {
            span class="done" { "— done per second" }
            span class="dead" { "— dead per second" }
            span id="rates" class="muted" {}
        }
        canvas id="throughput" class="chart" data-poll=(path(&shared, "/api/overview")) {}
        p class="muted" { "Updated every two seconds while this page is open." }
    };
    page(&shared, Nav::Overview, "Overview", None, &body).into_response()
}

/// `/api/overview`: the overview's numbers, for its script.
pub(crate) async fn overview_json(State(shared): State<Arc<Shared>>) -> Response {
    match read_overview(&shared).await {
        Ok(overview) => Json(&*overview).into_response(),
        Err(response) => response,
    }
}

// ---- jobs ----

/// The filters of `/jobs`.
#[derive(Deserialize, Default)]
pub(crate) struct JobsParams {
    state: Option<String>,
    queue: Option<String>,
    command: Option<String>,
    key: Option<String>,
    id: Option<String>,
    before: Option<String>,
    note: Option<String>,
}

/// One page of the listing: the jobs shown and where the next page starts.
struct Listing {
    names: Vec<String>,
    queue: String,
    jobs: Vec<Job>,
    next: Option<JobId>,
}

/// Fills a page of [`PAGE`] jobs matching `query` (and `key`, when given)
/// from at most [`MAX_PAGES`] backend pages.
fn fill(
    backend: &dyn BaseQueue,
    mut query: JobQuery,
    key: Option<&str>,
) -> Result<(Vec<Job>, Option<JobId>), outband::Error> {
    let mut shown = Vec::new();
    for _ in 0..MAX_PAGES {
        let want = if key.is_some() {
            PAGE
        } else {
            PAGE - shown.len()
        };
        let page = backend.jobs(&query.clone().limit(want))?;
        for job in page.jobs {
            if key.is_none_or(|key| job.key.as_deref() == Some(key)) {
                shown.push(job);
                if shown.len() == PAGE {
                    let last = shown.last().map(|job: &Job| job.id);
                    return Ok((shown, last));
                }
            }
        }
        match page.next {
            Some(next) => query = query.before(next),
            None => return Ok((shown, None)),
        }
    }
    Ok((shown, query.before))
}

/// `/jobs`: one queue's jobs in one state, filtered, a page at a time; an
/// id goes straight to that job.
pub(crate) async fn jobs(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<JobsParams>,
) -> Response {
    let state = given(params.state.as_ref())
        .and_then(JobState::parse)
        .unwrap_or(JobState::Pending);
    let mut note = given(params.note.as_ref()).map(str::to_owned);
    if let Some(id) = given(params.id.as_ref()) {
        match id.parse::<u64>() {
            Ok(id) => {
                let found = match blocking(&shared, move |b| b.job(JobId(id))).await {
                    Ok(found) => found,
                    Err(response) => return response,
                };
                if found.is_some() {
                    return redirect(&shared, &format!("/jobs/{id}"), "");
                }
                note = Some(format!("No job {id}: never enqueued, or purged."));
            }
            Err(_) => note = Some(format!("`{id}` is not a job id: ids are numbers.")),
        }
    }
    let wanted_queue = given(params.queue.as_ref()).map(str::to_owned);
    let command = given(params.command.as_ref()).map(str::to_owned);
    let key = given(params.key.as_ref()).map(str::to_owned);
    let before = given(params.before.as_ref()).and_then(|b| b.parse::<u64>().ok());
    let (command_q, key_q) = (command.clone(), key.clone());
    let cache = shared.clone();
    let listing = blocking(&shared, move |backend| {
        let names = suggested_queues(&cache, backend, wanted_queue.as_deref())?;
        let queue = wanted_queue
            .or_else(|| names.first().cloned())
            .unwrap_or_else(|| "default".to_owned());
        let mut query = JobQuery::new(&queue, state);
        if let Some(command) = command_q {
            query = query.command(command);
        }
        if let Some(before) = before {
            query = query.before(JobId(before));
        }
        let (jobs, next) = fill(backend, query, key_q.as_deref())?;
        Ok(Listing {
            names,
            queue,
            jobs,
            next,
        })
    })
    .await;
    let listing = match listing {
        Ok(listing) => listing,
        Err(response) => return response,
    };
    let command = command.unwrap_or_default();
    let key = key.unwrap_or_default();
    let filters = |before: &str| {
        link(
            &shared,
            "/jobs",
            &[
                ("queue", &listing.queue),
                ("state", state.as_str()),
                ("command", &command),
                ("key", &key),
                ("before", before),
            ],
        )
    };
    let body = html! {
        form class="filters" method="get" action=(path(&shared, "/jobs")) {
            label { "queue"
                input type="text" name="queue" list="queues" value=(listing.queue);
                datalist id="queues" {
                    @for name in &listing.names { option value=(name) {} }
                }
            }
            label { "state"
                select name="state" {
                    @for s in JobState::ALL {
                        option value=(s.as_str()) selected[s == state] { (s.as_str()) }
                    }
                }
            }
            label { "command" input type="text" name="command" value=(command); }
            label { "ordering key" input type="text" name="key" value=(key); }
            label { "id" input type="text" name="id" inputmode="numeric" size="10"; }
            button type="submit" { "Show" }
        }
        @if listing.jobs.is_empty() {
            p class="muted" { "No " (state.as_str()) " job of queue " (listing.queue) " matches on this page." }
        } @else {
            (jobs_table(&shared, &listing.jobs))
        }
        p class="pager" {
            @if before.is_some() {
                a href=(filters("")) { "« newest" }
            }
            @if let Some(next) = listing.next {
                a href=(filters(&next.0.to_string())) { "older »" }
            }
        }
    };
    let title = format!("Jobs: {} of {}", state.as_str(), listing.queue);
    page(&shared, Nav::Jobs, &title, note.as_deref(), &body).into_response()
}

fn jobs_table(shared: &Shared, jobs: &[Job]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "id" } th { "command" } th { "key" } th class="n" { "attempt" }
                th { "enqueued" } th { "run at" } th { "progress or error" }
            } }
            tbody {
                @for job in jobs {
                    tr {
                        td { a href=(path(shared, &format!("/jobs/{}", job.id))) { (job.id) } }
                        td { (job.command) }
                        td { (job.key.as_deref().unwrap_or("")) }
                        td class="n" { (job.attempt) "/" (job.max_attempts) }
                        td { (time(job.enqueued_at)) }
                        td { (time(job.run_at)) }
                        td { (detail(job)) }
                    }
                }
            }
        }
    }
}

/// A job's progress while it has not finished, else its last error.
fn detail(job: &Job) -> Markup {
    match (&job.progress, &job.last_error) {
        (Some(progress), _) if !job.state.is_finished() => html! {
            (format!("{:.0} %", progress.fraction * 100.0)) " " (progress.note)
        },
        (_, Some(error)) => html! { span class="error" { (error) } },
        _ => html! {},
    }
}

/// `/jobs/{id}`: one job as stored, its arguments and result as JSON
/// through its command's types.
pub(crate) async fn job(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(note): Query<NoteParam>,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return not_found(State(shared)).await;
    };
    let job = match blocking(&shared, move |b| b.job(JobId(id))).await {
        Ok(Some(job)) => job,
        Ok(None) => {
            let body =
                html! { p { "No job " (id) ": never enqueued, or purged after its retention." } };
            return (
                StatusCode::NOT_FOUND,
                page(&shared, Nav::Jobs, "Job not found", None, &body),
            )
                .into_response();
        }
        Err(response) => return response,
    };
    let command = shared.registry.and_then(|r| r.get(&job.command).ok());
    let arguments = outband::admin::args_shown(shared.registry, &job);
    let result = outband::admin::result_shown(shared.registry, &job);
    let timeout = job.timeout.or(command.and_then(|command| command.timeout));
    let back = format!("/jobs/{id}");
    let body = html! {
        dl {
            dt { "command" } dd { (job.command) }
            dt { "queue" } dd { a href=(link(&shared, "/jobs", &[("queue", &job.queue), ("state", job.state.as_str())])) { (job.queue) } }
            @if let Some(key) = &job.key { dt { "ordering key" } dd { (key) } }
            dt { "priority" } dd { (job.priority) }
            dt { "state" } dd { (job.state.as_str()) }
            dt { "attempt" } dd { (job.attempt) " of " (job.max_attempts) }
            dt { "enqueued" } dd { (time(job.enqueued_at)) }
            dt { "run at" } dd { (time(job.run_at)) }
            @if let Some(at) = job.started_at { dt { "started" } dd { (time(at)) } }
            @if let Some(at) = job.finished_at { dt { "finished" } dd { (time(at)) } }
            @if job.duration.is_some() { dt { "duration" } dd { (millis(job.duration)) } }
            @if let Some(timeout) = timeout { dt { "timeout" } dd { (humantime::format_duration(timeout).to_string()) } }
            @if let Some(progress) = &job.progress {
                dt { "progress" } dd { (format!("{:.0} %", progress.fraction * 100.0)) " " (progress.note) }
            }
        }
        @if let Some(error) = &job.last_error {
            h2 { "Last error" }
            pre class="error" { (error) }
        }
        h2 { "Arguments" }
        pre { (arguments) }
        @if let Some(result) = &result {
            h2 { "Result" }
            pre { (result) }
        }
        @if !shared.read_only {
            @if job.state == JobState::Dead {
                h2 { "Actions" }
                form class="inline" method="post" action=(path(&shared, "/dead/retry")) {
                    (csrf(&session))
                    input type="hidden" name="back" value=(back);
                    button type="submit" name="one" value=(job.id) { "Retry" }
                }
                " "
                form class="inline" method="post" action=(path(&shared, "/dead/delete")) {
                    (csrf(&session))
                    input type="hidden" name="back" value=(format!("/dead?queue={}", form_urlencoded::byte_serialize(job.queue.as_bytes()).collect::<String>()));
                    button class="danger" type="submit" name="one" value=(job.id) { "Delete" }
                }
            } @else if !job.state.is_finished() {
                h2 { "Actions" }
                form class="inline" method="post" action=(path(&shared, &format!("/jobs/{id}/cancel"))) {
                    (csrf(&session))
                    button class="danger" type="submit" { "Cancel" }
                }
            }
        }
    };
    let title = format!("Job {id}");
    page(&shared, Nav::Jobs, &title, note.text(), &body).into_response()
}

/// POST `/jobs/{id}/cancel`.
pub(crate) async fn cancel(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    let done = blocking(&shared, move |b| {
        b.cancel(JobId(id), "cancelled from the dashboard")
    })
    .await;
    let note = match done {
        Ok(Cancellation::Cancelled) => "Cancelled.".to_owned(),
        Ok(Cancellation::Requested) => {
            "Cancel requested: its consumer stops it, and it ends cancelled.".to_owned()
        }
        Ok(Cancellation::Finished(state)) => format!("It is {state} already; nothing changed."),
        Ok(_) => "Not found; nothing changed.".to_owned(),
        Err(response) => return response,
    };
    redirect(&shared, &format!("/jobs/{id}"), &note)
}

// ---- dead letters ----

/// The filters of `/dead`.
#[derive(Deserialize, Default)]
pub(crate) struct DeadParams {
    queue: Option<String>,
    offset: Option<usize>,
    note: Option<String>,
}

/// `/dead`: a queue's dead letters, with retry and delete.
pub(crate) async fn dead(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<Session>,
    Query(params): Query<DeadParams>,
) -> Response {
    let wanted = given(params.queue.as_ref()).map(str::to_owned);
    let offset = params.offset.unwrap_or(0);
    let cache = shared.clone();
    let read = blocking(&shared, move |backend| {
        let names = suggested_queues(&cache, backend, wanted.as_deref())?;
        let queue = wanted
            .or_else(|| names.first().cloned())
            .unwrap_or_else(|| "default".to_owned());
        let jobs = backend.dead_jobs(&queue, offset, PAGE + 1)?;
        Ok((names, queue, jobs))
    })
    .await;
    let (names, queue, mut jobs) = match read {
        Ok(read) => read,
        Err(response) => return response,
    };
    let more = jobs.len() > PAGE;
    jobs.truncate(PAGE);
    let back = link(&shared, "/dead", &[("queue", &queue)])
        .strip_prefix(&shared.base)
        .map(str::to_owned)
        .unwrap_or_default();
    let writable = !shared.read_only;
    let table = html! {
        table {
            thead { tr {
                @if writable { th {} }
                th { "id" } th { "command" } th class="n" { "attempt" } th { "dead since" } th { "error" }
                @if writable { th {} }
            } }
            tbody {
                @for job in &jobs {
                    tr {
                        @if writable { td { input type="checkbox" name="id" value=(job.id) aria-label="select"; } }
                        td { a href=(path(&shared, &format!("/jobs/{}", job.id))) { (job.id) } }
                        td { (job.command) }
                        td class="n" { (job.attempt) "/" (job.max_attempts) }
                        td { (job.finished_at.map(time).unwrap_or_default()) }
                        td class="error" { (job.last_error.as_deref().unwrap_or("")) }
                        @if writable {
                            td {
                                button type="submit" name="one" value=(job.id) { "Retry" }
                                " "
                                button class="danger" type="submit" name="one" value=(job.id)
                                    formaction=(path(&shared, "/dead/delete")) { "Delete" }
                            }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        form class="filters" method="get" action=(path(&shared, "/dead")) {
            label { "queue"
                input type="text" name="queue" list="queues" value=(queue);
                datalist id="queues" {
                    @for name in &names { option value=(name) {} }
                }
            }
            button type="submit" { "Show" }
        }
        @if jobs.is_empty() {
            p class="muted" { "No dead job in queue " (queue) "." }
        } @else {
            @if writable {
                form method="post" action=(path(&shared, "/dead/retry")) {
                    (csrf(&session))
                    input type="hidden" name="back" value=(back);
                    (table)
                    p {
                        button type="submit" { "Retry selected" }
                        " "
                        button class="danger" type="submit" formaction=(path(&shared, "/dead/delete")) { "Delete selected" }
                    }
                }
            } @else {
                (table)
            }
            @if writable {
                p {
                    form class="inline" method="post" action=(path(&shared, "/dead/retry-all")) {
                        (csrf(&session))
                        input type="hidden" name="queue" value=(queue);
                        button type="submit" { "Retry all of " (queue) }
                    }
                    " "
                    a href=(link(&shared, "/dead/delete-all", &[("queue", &queue)])) { "Delete all of " (queue) "…" }
                }
            }
            p class="pager" {
                @if offset > 0 {
                    a href=(link(&shared, "/dead", &[("queue", &queue), ("offset", &offset.saturating_sub(PAGE).to_string())])) { "« newer" }
                }
                @if more {
                    a href=(link(&shared, "/dead", &[("queue", &queue), ("offset", &(offset + PAGE).to_string())])) { "older »" }
                }
            }
        }
    };
    page(
        &shared,
        Nav::Dead,
        "Dead letters",
        given(params.note.as_ref()),
        &body,
    )
    .into_response()
}

/// The ids a dead-letter form acts on: the one whose button was pressed,
/// else every ticked one.
fn chosen(fields: &[(String, String)]) -> Vec<JobId> {
    if let Some(one) = field(fields, "one") {
        return one.parse().map(JobId).into_iter().collect();
    }
    fields
        .iter()
        .filter(|(key, _)| key == "id")
        .filter_map(|(_, value)| value.parse().ok().map(JobId))
        .collect()
}

async fn each_dead(
    shared: Arc<Shared>,
    body: &Bytes,
    verb: &'static str,
    act: fn(&dyn BaseQueue, JobId) -> Result<bool, outband::Error>,
) -> Response {
    let fields = fields(body);
    let ids = chosen(&fields);
    let back = field(&fields, "back").unwrap_or("/dead").to_owned();
    if ids.is_empty() {
        return redirect(&shared, &back, "No job selected; nothing changed.");
    }
    let done = blocking(&shared, move |backend| {
        let mut changed = 0;
        for &id in &ids {
            if act(backend, id)? {
                changed += 1;
            }
        }
        Ok((changed, ids.len() - changed))
    })
    .await;
    match done {
        Ok((changed, 0)) => redirect(&shared, &back, &format!("{verb} {changed} dead jobs.")),
        Ok((changed, not_dead)) => redirect(
            &shared,
            &back,
            &format!("{verb} {changed} dead jobs; {not_dead} were not dead and did not change."),
        ),
        Err(response) => response,
    }
}

/// POST `/dead/retry`: the pressed or ticked dead jobs back to pending.
pub(crate) async fn dead_retry(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    each_dead(shared, &body, "Retried", |b, id| b.retry_dead(id)).await
}

/// POST `/dead/delete`: the pressed or ticked dead jobs deleted.
pub(crate) async fn dead_delete(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    each_dead(shared, &body, "Deleted", |b, id| b.delete_dead(id)).await
}

fn queue_field(fields: &[(String, String)]) -> Option<String> {
    field(fields, "queue")
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
}

/// POST `/dead/retry-all`: every dead job of a queue back to pending.
pub(crate) async fn dead_retry_all(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(queue) = queue_field(&fields(&body)) else {
        return problem(
            &shared,
            StatusCode::BAD_REQUEST,
            "which queue? the form names none",
        );
    };
    let back = link(&shared, "/dead", &[("queue", &queue)]);
    let back = back
        .strip_prefix(&shared.base)
        .unwrap_or("/dead")
        .to_owned();
    let q = queue.clone();
    match blocking(&shared, move |b| outband::admin::retry_all_dead(b, &q)).await {
        Ok(n) => redirect(
            &shared,
            &back,
            &format!("Retried {n} dead jobs of queue {queue}."),
        ),
        Err(response) => response,
    }
}

/// The `queue` of a confirmation page's address.
#[derive(Deserialize, Default)]
pub(crate) struct QueueParam {
    queue: Option<String>,
}

/// What a confirmation page asks, and the form it posts.
struct Ask<'a> {
    nav: Nav,
    question: String,
    /// The path the form posts to.
    action: &'a str,
    queue: &'a str,
    button: &'a str,
    /// The path "no" goes back to.
    back: &'a str,
}

/// A page that asks before a destructive action.
fn confirm(shared: &Shared, session: &Session, ask: &Ask<'_>) -> Response {
    let body = html! {
        p { (ask.question) }
        @if shared.read_only {
            p class="muted" { "This dashboard is read-only." }
        } @else {
            form method="post" action=(path(shared, ask.action)) {
                (csrf(session))
                input type="hidden" name="queue" value=(ask.queue);
                input type="hidden" name="confirm" value="yes";
                button class="danger" type="submit" { (ask.button) }
                " "
                a href=(path(shared, ask.back)) { "No, go back" }
            }
        }
    };
    page(shared, ask.nav, "Are you sure?", None, &body).into_response()
}

/// GET `/dead/delete-all?queue=Q`: asks before deleting every dead job of
/// a queue.
pub(crate) async fn dead_delete_all_confirm(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<Session>,
    Query(params): Query<QueueParam>,
) -> Response {
    let Some(queue) = given(params.queue.as_ref()).map(str::to_owned) else {
        return redirect(&shared, "/dead", "Choose a queue first.");
    };
    let (q, exact_up_to) = (queue.clone(), shared.exact_up_to);
    let dead = match blocking(&shared, move |b| b.estimate_stats(&q, exact_up_to)).await {
        Ok(stats) => count(stats.dead, stats.is_estimated(JobState::Dead)),
        Err(response) => return response,
    };
    let ask = Ask {
        nav: Nav::Dead,
        question: format!(
            "Delete the {dead} dead jobs of queue {queue}? They cannot be retried after that."
        ),
        action: "/dead/delete-all",
        queue: &queue,
        button: "Delete them",
        back: "/dead",
    };
    confirm(&shared, &session, &ask)
}

/// The queue a confirmed form names, or what the form is missing: the
/// queue, or the confirmation.
fn confirmed_queue(body: &Bytes) -> Result<String, &'static str> {
    let fields = fields(body);
    let queue = queue_field(&fields).ok_or("which queue? the form names none")?;
    if field(&fields, "confirm") != Some("yes") {
        return Err("not confirmed; nothing changed");
    }
    Ok(queue)
}

/// POST `/dead/delete-all`: deletes every dead job of a queue, once
/// confirmed.
pub(crate) async fn dead_delete_all(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let queue = match confirmed_queue(&body) {
        Ok(queue) => queue,
        Err(missing) => return problem(&shared, StatusCode::BAD_REQUEST, missing),
    };
    let q = queue.clone();
    match blocking(&shared, move |b| outband::admin::delete_all_dead(b, &q)).await {
        Ok(n) => redirect(
            &shared,
            "/dead",
            &format!("Deleted {n} dead jobs of queue {queue}."),
        ),
        Err(response) => response,
    }
}

// ---- queues ----

/// `/queues`: pause, resume and flush each queue.
pub(crate) async fn queues(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<Session>,
    Query(note): Query<NoteParam>,
) -> Response {
    let cache = shared.clone();
    let read = blocking(&shared, move |backend| {
        queue_names(&cache, backend)?
            .into_iter()
            .map(|name| {
                let stats = backend.estimate_stats(&name, cache.exact_up_to)?;
                Ok((name, stats))
            })
            .collect::<Result<Vec<_>, outband::Error>>()
    })
    .await;
    let lines = match read {
        Ok(lines) => lines,
        Err(response) => return response,
    };
    let body = html! {
        @if lines.is_empty() {
            p class="muted" { "No queue holds a job yet." }
        } @else {
            table {
                thead { tr {
                    th { "queue" } th class="n" { "pending" } th class="n" { "running" } th class="n" { "dead" } th { "claims" }
                    @if !shared.read_only { th {} }
                } }
                tbody {
                    @for (name, stats) in &lines {
                        tr {
                            td { a href=(link(&shared, "/jobs", &[("queue", name)])) { (name) } }
                            td class="n" { (count(stats.pending, stats.is_estimated(JobState::Pending))) }
                            td class="n" { (count(stats.running, stats.is_estimated(JobState::Running))) }
                            td class="n" { a href=(link(&shared, "/dead", &[("queue", name)])) { (count(stats.dead, stats.is_estimated(JobState::Dead))) } }
                            td { @if stats.paused { span class="paused" { "paused" } } @else { span class="on" { "on" } } }
                            @if !shared.read_only {
                                td {
                                    @let (action, label) = if stats.paused { ("/queues/resume", "Resume") } else { ("/queues/pause", "Pause") };
                                    form class="inline" method="post" action=(path(&shared, action)) {
                                        (csrf(&session))
                                        input type="hidden" name="queue" value=(name);
                                        button type="submit" { (label) }
                                    }
                                    " "
                                    a href=(link(&shared, "/queues/flush", &[("queue", name)])) { "Flush…" }
                                }
                            }
                        }
                    }
                }
            }
            p class="muted" {
                "A paused queue's jobs stay pending: no consumer claims them until it is resumed. "
                "Running jobs finish. Flushing deletes a queue's pending jobs."
            }
        }
    };
    page(&shared, Nav::Queues, "Queues", note.text(), &body).into_response()
}

async fn pause_or_resume(shared: Arc<Shared>, body: &Bytes, pause: bool) -> Response {
    let Some(queue) = queue_field(&fields(body)) else {
        return problem(
            &shared,
            StatusCode::BAD_REQUEST,
            "which queue? the form names none",
        );
    };
    let q = queue.clone();
    let changed = blocking(
        &shared,
        move |b| if pause { b.pause(&q) } else { b.resume(&q) },
    )
    .await;
    let note = match (changed, pause) {
        (Ok(true), true) => format!("Queue {queue} paused: consumers stop claiming its jobs."),
        (Ok(false), true) => format!("Queue {queue} was paused already; nothing changed."),
        (Ok(true), false) => format!("Queue {queue} resumed."),
        (Ok(false), false) => format!("Queue {queue} was not paused; nothing changed."),
        (Err(response), _) => return response,
    };
    redirect(&shared, "/queues", &note)
}

/// POST `/queues/pause`.
pub(crate) async fn pause(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    pause_or_resume(shared, &body, true).await
}

/// POST `/queues/resume`.
pub(crate) async fn resume(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    pause_or_resume(shared, &body, false).await
}

/// GET `/queues/flush?queue=Q`: asks before deleting a queue's pending
/// jobs.
pub(crate) async fn flush_confirm(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<Session>,
    Query(params): Query<QueueParam>,
) -> Response {
    let Some(queue) = given(params.queue.as_ref()).map(str::to_owned) else {
        return redirect(&shared, "/queues", "Choose a queue first.");
    };
    let (q, exact_up_to) = (queue.clone(), shared.exact_up_to);
    let pending = match blocking(&shared, move |b| b.estimate_stats(&q, exact_up_to)).await {
        Ok(stats) => count(stats.pending, stats.is_estimated(JobState::Pending)),
        Err(response) => return response,
    };
    let ask = Ask {
        nav: Nav::Queues,
        question: format!(
            "Delete the {pending} pending jobs of queue {queue}? Running, done and dead jobs stay."
        ),
        action: "/queues/flush",
        queue: &queue,
        button: "Flush",
        back: "/queues",
    };
    confirm(&shared, &session, &ask)
}

/// POST `/queues/flush`: deletes a queue's pending jobs, once confirmed.
pub(crate) async fn flush(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let queue = match confirmed_queue(&body) {
        Ok(queue) => queue,
        Err(missing) => return problem(&shared, StatusCode::BAD_REQUEST, missing),
    };
    let q = queue.clone();
    match blocking(&shared, move |b| b.flush(&q)).await {
        Ok(n) => redirect(
            &shared,
            "/queues",
            &format!("Deleted {n} pending jobs of queue {queue}."),
        ),
        Err(response) => response,
    }
}

// ---- periodic commands ----

/// `/periodic`: each periodic command's schedule, and the ticks it was
/// last due and is next due, on the backend's clock.
pub(crate) async fn periodic(State(shared): State<Arc<Shared>>) -> Response {
    let periodic = shared
        .registry
        .map(outband::Registry::periodic)
        .unwrap_or_default();
    let names: Vec<&'static str> = periodic.iter().map(|p| p.command.name).collect();
    let read = blocking(&shared, move |b| {
        let last = names
            .iter()
            .map(|name| b.last_tick(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((b.now()?, last))
    })
    .await;
    let (now, last) = match read {
        Ok((now, last)) => (DateTime::<Utc>::from(now), last),
        Err(response) => return response,
    };
    let body = html! {
        @if periodic.is_empty() {
            p class="muted" { "This program registers no periodic command." }
        } @else {
            table {
                thead { tr {
                    th { "command" } th { "queue" } th { "schedule" } th { "last enqueued" } th { "last due" } th { "next due" }
                } }
                tbody {
                    @for (p, last) in periodic.iter().zip(&last) {
                        @let cron = p.cron.parse::<Cron>();
                        tr {
                            td { (p.command.name) }
                            td { a href=(link(&shared, "/jobs", &[("queue", p.command.queue), ("command", p.command.name), ("state", "done")])) { (p.command.queue) } }
                            td { code { (p.cron) } }
                            td { (last.map_or_else(|| "never".to_owned(), time)) }
                            @match &cron {
                                Ok(cron) => {
                                    td { (cron.find_previous_occurrence(&now, true).map(|t| time(t.into())).unwrap_or_else(|_| "-".to_owned())) }
                                    td { (cron.find_next_occurrence(&now, false).map(|t| time(t.into())).unwrap_or_else(|_| "-".to_owned())) }
                                }
                                Err(error) => {
                                    td colspan="2" class="error" { "not a schedule: " (error.to_string()) }
                                }
                            }
                        }
                    }
                }
            }
            p class="muted" {
                "Ticks are the schedule's, on the backend's clock (" (time(now.into())) "). "
                "One consumer enqueues each tick: \"last enqueued\" is the latest tick a consumer "
                "claimed and enqueued, \"last due\" the latest the schedule set. A last due "
                "later than the last enqueued means no consumer served that tick (yet)."
            }
        }
    };
    page(&shared, Nav::Periodic, "Periodic commands", None, &body).into_response()
}

/// `/consumers`: the consumers registered in the backend, alive first;
/// one whose heartbeat stopped shows as gone until the backend forgets it
/// ([`outband::CONSUMER_FORGET_AFTER`] later).
pub(crate) async fn consumers(State(shared): State<Arc<Shared>>) -> Response {
    let read = blocking(&shared, |b| {
        Ok((b.capabilities().consumer_registry, b.consumers()?, b.now()?))
    })
    .await;
    let (kept, consumers, now) = match read {
        Ok(read) => read,
        Err(response) => return response,
    };
    let alive = consumers.iter().filter(|c| c.alive).count();
    let body = html! {
        @if !kept {
            p class="muted" { "This backend keeps no registry of consumers." }
        } @else if consumers.is_empty() {
            p class="muted" { "No consumer has registered: none runs, or none ran in the last minutes." }
        } @else {
            p { (alive) " alive, " (consumers.len() - alive) " gone." }
            table {
                thead { tr {
                    th { "state" } th { "host" } th { "pid" } th { "queues" }
                    th { "threads" } th { "async slots" } th { "running" }
                    th { "started" } th { "last seen" } th { "version" }
                } }
                tbody {
                    @for c in &consumers {
                        tr data-consumer=(c.info.id) {
                            td class=(if c.alive { "alive" } else { "gone" }) {
                                (if c.alive { "alive" } else { "gone" })
                            }
                            td { (c.info.host) }
                            td { (c.info.pid) }
                            td { (c.info.queues.join(", ")) }
                            td { (c.info.threads) }
                            td { (c.info.concurrency) }
                            td { (c.info.running) }
                            td { (time(c.info.started_at)) }
                            td { (ago(c.seen_at, now)) }
                            td { (c.info.version) }
                        }
                    }
                }
            }
            p class="muted" {
                "A consumer refreshes its entry every " (outband::CONSUMER_HEARTBEAT.as_secs())
                " s; one not seen for " (outband::CONSUMER_TTL.as_secs())
                " s is gone, and forgotten " (outband::CONSUMER_FORGET_AFTER.as_secs() / 60)
                " minutes later."
            }
        }
    };
    page(&shared, Nav::Consumers, "Consumers", None, &body).into_response()
}

/// Any other path.
pub(crate) async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    let body = html! { p { "No such page." } };
    (
        StatusCode::NOT_FOUND,
        page(&shared, Nav::Overview, "Not found", None, &body),
    )
        .into_response()
}

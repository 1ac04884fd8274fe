//! The outband dashboard: plain server-rendered pages over any outband
//! backend, as an axum [`Router`] you mount in your own app, or served by
//! the consumer daemon's `dashboard` command.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::Router;
//! use outband::MemoryQueue;
//! use outband_web::Dashboard;
//!
//! # async fn run() -> std::io::Result<()> {
//! let backend = Arc::new(MemoryQueue::new());
//! let dashboard = Dashboard::new(backend)
//!     // the path it is nested at: its links and cookies use it
//!     .base_path("/outband")
//!     .token(std::env::var("OUTBAND_DASHBOARD_TOKEN").ok());
//! let app = Router::new().nest("/outband", dashboard.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! # Pages
//!
//! | path | what it shows |
//! |---|---|
//! | `/` | per queue: counts by state, jobs/s, run-time p50 and p99, paused or not; a chart of jobs done and dead per second, updated every two seconds from `/api/overview` |
//! | `/jobs` | the jobs of one queue in one state, newest first, a page of 50 at a time, filtered by command, ordering key or id |
//! | `/jobs/{id}` | one job: arguments and result as JSON through its command's types, attempts, timings, progress, error; retry or delete when dead, cancel while pending or running |
//! | `/dead` | a queue's dead letters: retry or delete one, the ticked ones, or all of them (deleting all asks first) |
//! | `/queues` | pause, resume, and flush (after a confirmation) each queue |
//! | `/periodic` | each periodic command: its schedule, the last tick a consumer enqueued, the tick it was last due and the next |
//! | `/consumers` | the consumers registered in the backend ([`BaseQueue::consumers`]): host, pid, queues, threads and async slots, jobs running, start, last heartbeat, version; alive, or gone once their heartbeat stopped |
//! | `/metrics` | this process's metrics and the backend's counts, for Prometheus: see [`metrics`] |
//! | `/assets/…` | the style sheet and the script, compiled into the binary: nothing is fetched from elsewhere |
//!
//! The overview's list of queues comes from [`BaseQueue::queues`] at most
//! ten seconds ago, since a backend may look through its jobs to answer
//! it (the SQL backends probe an index once per queue). The
//! queue field of the jobs and dead-letter pages takes any name and
//! suggests that list while it is fresh, else the queues of the registered
//! commands, so that a page of one queue never waits for that look. Paused
//! queues and every count are read afresh for each page, except the
//! overview's counts, which count every queue's jobs: one reading serves
//! every request (page or poll) within a second of it. A request after
//! that second gets the last reading at once, and starts one new reading
//! in the background unless one is under way, for all requests to share:
//! an open overview, which polls every two seconds, shows the reading its
//! previous poll started, and the first look after a quiet spell shows
//! counts up to thirty seconds old. The page says when its counts were
//! read ("Counts as of 12:00:01 UTC", kept current by its script). Only a request that finds no reading, or one older than thirty
//! seconds (the first of a new router, or after a long quiet spell), waits
//! for a reading of its own, and other requests meanwhile wait for that
//! one. The
//! ordering-key filter reads up to ten of the backend's bounded pages
//! ([`outband::JobQuery::SCAN`] jobs each) to fill one page of the
//! dashboard, and says where to go on when they ran out. The periodic
//! page shows each command's last tick enqueued, the latest a consumer
//! claimed ([`BaseQueue::last_tick`]), beside the last and next ticks of
//! its schedule on the backend's clock. The
//! chart's "done" and "dead" rates are the differences between two looks at
//! the counts: jobs purged between them are not counted as negative.
//!
//! Every count of a page is exact up to 10,000 jobs of a queue in one
//! state ([`Dashboard::exact_counts_up_to`]). Above that it may be the
//! backend's estimate, shown as
//! `≈ 1204811` ([`BaseQueue::estimate_stats`]: PostgreSQL and MySQL give
//! their planner's estimate, as Oban's dashboard does; SQLite, Redis and
//! the memory backend count exactly at any size), so that a page answers
//! in milliseconds whatever the backend holds. The jobs/s and run times
//! are those of each queue's last 10,000 done jobs (the same bound). Where a queue's done
//! count is an estimate, the chart takes that queue's jobs/s for its done
//! rate, and leaves an estimated dead count out of the dead rate.
//!
//! # Security
//!
//! - **Access token.** With [`Dashboard::token`] set, every request needs it:
//!   `Authorization: Bearer TOKEN`, or a browser opens the dashboard once
//!   with `?token=TOKEN`, which sets an `HttpOnly`, `SameSite=Strict` cookie
//!   (an HMAC of the token, never the token) and moves on to the address
//!   without it (a page that refreshes, not a redirect, so that the cookie
//!   is sent even when the link was followed from another site). Without
//!   the token a request gets `401`.
//! - **State changes are POSTs** that need both a same-origin `Origin` (or,
//!   without it, `Referer`) whose host is the request's `Host`, and the CSRF
//!   token of the page's forms: an HMAC-SHA-256, under a secret drawn when
//!   the router is built, of a random session id kept in an `HttpOnly`,
//!   `SameSite=Strict` cookie. Either missing or wrong: `403`, and nothing
//!   changes. Any method other than GET, HEAD and POST is refused.
//! - **Read-only.** [`Dashboard::read_only`] hides every button and form that
//!   changes something, and refuses every POST with `403`.
//! - **Nothing from a job becomes markup.** Pages are [maud] templates, which
//!   escape every value they show (arguments, results, errors, command and
//!   queue names). Every response carries a `Content-Security-Policy` that
//!   allows scripts, styles and requests of the dashboard's own origin only
//!   (`script-src 'self'`, no inline script), `X-Frame-Options: DENY` and
//!   `Cache-Control: no-store`.
//!
//! Serve it on loopback, or behind TLS: the token and cookies travel as the
//! connection carries them.
//!
//! # The daemon's `dashboard` command
//!
//! A consumer binary built with outband-daemon's `dashboard` feature (on by
//! default) serves it:
//!
//! ```text
//! my-consumer dashboard [--bind 127.0.0.1:9140] [--token T | --insecure] [--read-only]
//! ```
//!
//! It binds `127.0.0.1:9140` unless told otherwise. A bind to an address
//! other than loopback needs `--token` (or `OUTBAND_DASHBOARD_TOKEN`), or
//! `--insecure` to say that anyone who reaches the port may use it; without
//! either it is refused. The dashboard shows the arguments and results of
//! the commands linked into that binary.
//!
//! # Routes of your own
//!
//! [`Dashboard::router`] returns a plain [`Router`]: routes of your own
//! merge into it with [`Router::merge`] or [`Router::route`]. Its access
//! token guards the routes it has, `/metrics` among them; a route added
//! after it is not behind the token unless you add a layer of your own.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use outband::{BaseQueue, Registry};

mod assets;
pub mod metrics;
mod pages;
mod security;
mod view;

/// The dashboard's settings: build one, then take its [`router`](Self::router).
pub struct Dashboard {
    backend: Arc<dyn BaseQueue>,
    registry: Option<&'static Registry>,
    read_only: bool,
    token: Option<String>,
    base: String,
    exact_up_to: u64,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("read_only", &self.read_only)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("base_path", &self.base)
            .field("exact_up_to", &self.exact_up_to)
            .finish_non_exhaustive()
    }
}

/// Resolves at the first SIGINT or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                log::warn!("signals cannot be caught: the dashboard stops when killed");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn BaseQueue>,
    pub(crate) registry: Option<&'static Registry>,
    pub(crate) read_only: bool,
    pub(crate) token: Option<String>,
    /// The path the router is nested at, without a trailing slash; empty at
    /// the root.
    pub(crate) base: String,
    /// How many jobs of a queue in one state the pages count exactly.
    pub(crate) exact_up_to: u64,
    /// Keys the CSRF tokens and access cookies; drawn per router.
    pub(crate) secret: Vec<u8>,
    /// The queues holding jobs, and when the backend said so.
    pub(crate) queues: Mutex<Option<(Instant, Vec<String>)>>,
    /// The overview's last reading, and whether one is being taken in the
    /// background.
    pub(crate) overview: Mutex<pages::Readings>,
    /// Held by a request that waits for a reading of the overview, so that
    /// requests that come meanwhile wait for that one.
    pub(crate) reading: tokio::sync::Mutex<()>,
}

impl Dashboard {
    /// A dashboard of `backend`, at the root path, with every action, no
    /// access token, and the commands of [`Registry::global`].
    pub fn new(backend: Arc<dyn BaseQueue>) -> Self {
        Self {
            backend,
            registry: None,
            read_only: false,
            token: None,
            base: String::new(),
            exact_up_to: Self::EXACT_UP_TO,
        }
    }

    /// How many jobs of a queue in one state the pages count exactly, by
    /// default: see [`exact_counts_up_to`](Self::exact_counts_up_to).
    pub const EXACT_UP_TO: u64 = 10_000;

    /// Counts each queue's jobs in one state exactly up to `jobs`, and
    /// shows the backend's estimate above that
    /// ([`BaseQueue::estimate_stats`]); by default
    /// [`EXACT_UP_TO`](Self::EXACT_UP_TO). A higher bound makes exact
    /// counts cost more on PostgreSQL and MySQL; `u64::MAX` counts
    /// everything exactly.
    pub fn exact_counts_up_to(mut self, jobs: u64) -> Self {
        self.exact_up_to = jobs;
        self
    }

    /// Shows arguments and results through the commands of `registry`
    /// instead of the global one.
    pub fn registry(mut self, registry: &'static Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// With `true`, shows no button or form that changes anything, and
    /// refuses every POST.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Requires `token` on every request, when `Some`: see the crate's docs.
    /// An empty token counts as none.
    pub fn token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|token| !token.is_empty());
        self
    }

    /// The path the router is nested at (`"/outband"`), for its links and
    /// cookies; `""` or `"/"` for the root, the default.
    pub fn base_path(mut self, base: impl Into<String>) -> Self {
        let base = base.into();
        self.base = format!("/{}", base.trim_matches('/'));
        if self.base == "/" {
            self.base.clear();
        }
        self
    }

    /// Serves the dashboard alone on `listener`, at its
    /// [`base_path`](Self::base_path), until SIGINT or SIGTERM (Ctrl-C
    /// elsewhere than Unix): what the daemon's `dashboard` command runs.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let router = if self.base.is_empty() {
            self.router()
        } else {
            let base = self.base.clone();
            Router::new().nest(&base, self.router())
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(stopped())
            .await
    }

    /// The dashboard's routes, behind its guard, to nest in an app at its
    /// [`base_path`](Self::base_path) or serve alone.
    pub fn router(self) -> Router {
        let registry = self.registry.or_else(|| match Registry::global() {
            Ok(registry) => Some(registry),
            Err(error) => {
                log::error!("the dashboard shows arguments as bytes: {error}");
                None
            }
        });
        let shared = Arc::new(Shared {
            backend: self.backend,
            registry,
            read_only: self.read_only,
            token: self.token,
            base: self.base,
            exact_up_to: self.exact_up_to,
            secret: security::random_hex(32).into_bytes(),
            queues: Mutex::new(None),
            overview: Mutex::new(pages::Readings::default()),
            reading: tokio::sync::Mutex::new(()),
        });
        Router::new()
            .route("/", get(pages::overview))
            .route("/api/overview", get(pages::overview_json))
            .route("/jobs", get(pages::jobs))
            .route("/jobs/{id}", get(pages::job))
            .route("/jobs/{id}/cancel", post(pages::cancel))
            .route("/dead", get(pages::dead))
            .route("/dead/retry", post(pages::dead_retry))
            .route("/dead/delete", post(pages::dead_delete))
            .route("/dead/retry-all", post(pages::dead_retry_all))
            .route(
                "/dead/delete-all",
                get(pages::dead_delete_all_confirm).post(pages::dead_delete_all),
            )
            .route("/queues", get(pages::queues))
            .route("/queues/pause", post(pages::pause))
            .route("/queues/resume", post(pages::resume))
            .route(
                "/queues/flush",
                get(pages::flush_confirm).post(pages::flush),
            )
            .route("/periodic", get(pages::periodic))
            .route("/consumers", get(pages::consumers))
            .route(
                "/metrics",
                get(|State(shared): State<Arc<Shared>>| metrics::respond(shared.backend.clone())),
            )
            .route("/assets/{name}", get(assets::asset))
            .fallback(pages::not_found)
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                security::guard,
            ))
            .with_state(shared)
    }
}

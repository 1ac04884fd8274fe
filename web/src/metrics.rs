//! Prometheus metrics: what this process's processors and enqueues did
//! (through [`outband::observe`]), and what the backend holds, read at
//! each scrape.
//!
//! [`install`] registers the process's [`Metrics`] as outband's observer;
//! [`router`] serves them at `GET /metrics` in the OpenMetrics text format,
//! which Prometheus reads. The dashboard's router has the route, and the
//! daemon serves it on its own with `run --metrics ADDR`.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `outband_jobs` | gauge | `queue`, `state` | jobs in the backend by state, read at the scrape |
//! | `outband_queue_paused` | gauge | `queue` | 1 while the queue is paused |
//! | `outband_consumers_alive` | gauge | | consumers whose heartbeat is current, where the backend keeps a registry |
//! | `outband_jobs_processed_total` | counter | `command` | attempts that ended done, in this process |
//! | `outband_jobs_failed_total` | counter | `command` | attempts that failed (retried or dead), in this process |
//! | `outband_job_run_seconds` | histogram | `command` | how long each attempt ran |
//! | `outband_claim_seconds` | histogram | `queue` | how long each claim of a processor took |
//! | `outband_enqueue_seconds` | histogram | | how long each enqueue call took |
//!
//! Counters and histograms count what this process did since it started:
//! scrape every consumer (and every web process that enqueues) and sum
//! them in PromQL. The gauges read the backend, so one scrape of them
//! (the dashboard's) is enough; every consumer reports them alike.
//! Families with nothing counted yet are left out of the text.
//!
//! # Scraping
//!
//! Consumers started with `run --metrics 0.0.0.0:9141`, and a dashboard
//! with an access token:
//!
//! ```yaml
//! scrape_configs:
//!   - job_name: outband-consumers
//!     static_configs:
//!       - targets: ["worker-1:9141", "worker-2:9141"]
//!   - job_name: outband-dashboard
//!     metrics_path: /metrics
//!     authorization:
//!       credentials_file: /etc/prometheus/outband-token
//!     static_configs:
//!       - targets: ["dashboard:9140"]
//! ```
//!
//! Some queries:
//!
//! ```text
//! # jobs done per second, by command, over all consumers
//! sum by (command) (rate(outband_jobs_processed_total[5m]))
//! # the share of attempts that failed
//! sum(rate(outband_jobs_failed_total[5m]))
//!   / (sum(rate(outband_jobs_processed_total[5m])) + sum(rate(outband_jobs_failed_total[5m])))
//! # p99 run time by command
//! histogram_quantile(0.99, sum by (command, le) (rate(outband_job_run_seconds_bucket[5m])))
//! # the backlog of each queue (from one scrape job, not summed over consumers)
//! max by (queue) (outband_jobs{job="outband-dashboard", state="pending"})
//! # alert: no consumer alive
//! max(outband_consumers_alive{job="outband-dashboard"}) == 0
//! ```

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use outband::BaseQueue;
use outband::observe::{self, Attempt, Observer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueState {
    queue: String,
    state: &'static str,
}

/// Run times and latencies from 0.5 ms to about 4.6 hours.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 4.0, 13))
}

/// This process's metrics. See the [module docs](self).
pub struct Metrics {
    registry: Registry,
    processed: Family<CommandLabel, Counter>,
    failed: Family<CommandLabel, Counter>,
    run_time: Family<CommandLabel, Histogram, fn() -> Histogram>,
    claim: Family<QueueLabel, Histogram, fn() -> Histogram>,
    enqueue: Histogram,
    jobs: Family<QueueState, Gauge>,
    paused: Family<QueueLabel, Gauge>,
    consumers: Gauge,
    /// One scrape at a time reads the backend into the gauges.
    scrape: Mutex<()>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("outband");
        let processed = Family::<CommandLabel, Counter>::default();
        let failed = Family::<CommandLabel, Counter>::default();
        let run_time = Family::new_with_constructor(seconds as fn() -> Histogram);
        let claim = Family::new_with_constructor(seconds as fn() -> Histogram);
        let enqueue = seconds();
        let jobs = Family::<QueueState, Gauge>::default();
        let paused = Family::<QueueLabel, Gauge>::default();
        let consumers = Gauge::default();
        registry.register(
            "jobs",
            "Jobs in the backend by queue and state",
            jobs.clone(),
        );
        registry.register(
            "queue_paused",
            "1 while the queue is paused",
            paused.clone(),
        );
        registry.register(
            "consumers_alive",
            "Consumers whose heartbeat is current",
            consumers.clone(),
        );
        registry.register(
            "jobs_processed",
            "Attempts that ended done, in this process",
            processed.clone(),
        );
        registry.register(
            "jobs_failed",
            "Attempts that failed (retried or dead), in this process",
            failed.clone(),
        );
        registry.register(
            "job_run_seconds",
            "How long each attempt ran",
            run_time.clone(),
        );
        registry.register(
            "claim_seconds",
            "How long each claim of a processor took",
            claim.clone(),
        );
        registry.register(
            "enqueue_seconds",
            "How long each enqueue call took",
            enqueue.clone(),
        );
        Self {
            registry,
            processed,
            failed,
            run_time,
            claim,
            enqueue,
            jobs,
            paused,
            consumers,
            scrape: Mutex::new(()),
        }
    }

    /// The text of a scrape: the backend's counts, read now, and this
    /// process's counters and histograms.
    ///
    /// # Errors
    /// When the backend cannot be read.
    pub fn render(&self, backend: Option<&dyn BaseQueue>) -> Result<String, outband::Error> {
        let _scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(backend) = backend {
            self.read_backend(backend)?;
        }
        let mut text = String::new();
        encode(&mut text, &self.registry)
            .map_err(|_| outband::Error::backend("the metrics could not be encoded"))?;
        Ok(text)
    }

    fn read_backend(&self, backend: &dyn BaseQueue) -> Result<(), outband::Error> {
        // a queue flushed or gone since the last scrape is not reported
        self.jobs.clear();
        self.paused.clear();
        for queue in backend.queues()? {
            let stats = backend.stats(&queue)?;
            for (state, count) in [
                ("pending", stats.pending),
                ("running", stats.running),
                ("done", stats.done),
                ("dead", stats.dead),
                ("cancelled", stats.cancelled),
            ] {
                self.jobs
                    .get_or_create(&QueueState {
                        queue: queue.clone(),
                        state,
                    })
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            self.paused
                .get_or_create(&QueueLabel {
                    queue: queue.clone(),
                })
                .set(i64::from(stats.paused));
        }
        let alive = backend
            .consumers()?
            .iter()
            .filter(|consumer| consumer.alive)
            .count();
        self.consumers.set(i64::try_from(alive).unwrap_or(i64::MAX));
        Ok(())
    }
}

impl Observer for Metrics {
    fn claimed(&self, queue: &str, _jobs: usize, took: Duration) {
        self.claim
            .get_or_create(&QueueLabel {
                queue: queue.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    fn attempt_ended(&self, attempt: &Attempt<'_>) {
        let command = CommandLabel {
            command: attempt.command.to_owned(),
        };
        if attempt.end == observe::AttemptEnd::Done {
            self.processed.get_or_create(&command).inc();
        } else if attempt.end.failed() {
            self.failed.get_or_create(&command).inc();
        }
        self.run_time
            .get_or_create(&command)
            .observe(attempt.run_time.as_secs_f64());
    }

    fn enqueued(&self, _jobs: usize, took: Duration, _ok: bool) {
        self.enqueue.observe(took.as_secs_f64());
    }
}

static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();

/// This process's metrics, installed as outband's observer the first time.
/// When another observer was installed before, the metrics still serve the
/// backend's counts, and this process's counters stay at zero (logged).
pub fn install() -> &'static Metrics {
    let mut installed_now = false;
    let metrics = METRICS.get_or_init(|| {
        installed_now = true;
        Arc::new(Metrics::new())
    });
    if installed_now && observe::set_observer(metrics.clone()).is_err() {
        log::warn!(
            "another outband observer is installed: /metrics reports the backend's counts \
             but not this process's claims, attempts and enqueues"
        );
    }
    metrics
}

/// `GET /metrics` alone, for `backend`, with this process's metrics
/// ([`install`]): what a consumer serves with `--metrics ADDR`. The
/// dashboard's router has the same route behind its guard.
pub fn router(backend: Arc<dyn BaseQueue>) -> Router {
    install();
    Router::new()
        .route(
            "/metrics",
            get(|State(backend): State<Arc<dyn BaseQueue>>| respond(backend)),
        )
        .with_state(backend)
}

/// Serves [`router`] on `listener` until the process ends.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    backend: Arc<dyn BaseQueue>,
) -> std::io::Result<()> {
    axum::serve(listener, router(backend)).await
}

/// The answer to a scrape: the metrics with `backend`'s counts, read on the
/// blocking pool, or `503` when the backend cannot be read.
pub(crate) async fn respond(backend: Arc<dyn BaseQueue>) -> Response {
    let metrics = install();
    let rendered = tokio::task::spawn_blocking(move || metrics.render(Some(&*backend))).await;
    match rendered {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Ok(Err(error)) => {
            log::warn!("the metrics could not read the backend: {error}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the backend could not be read: {error}\n"),
            )
                .into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the scrape failed\n").into_response(),
    }
}

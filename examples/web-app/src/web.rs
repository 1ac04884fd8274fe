//! The web side: djutils' `data_processing_view` as an axum handler, a
//! second view for the sync command, and a job's status.
//!
//! | route | answer |
//! |---|---|
//! | `POST /churn/{some_val}/{another_val}`, form field `payload` | `202 Accepted`, `{"job": ID}` and `Location: /jobs/ID`: the call of the async [`churn_data`](fn@churn_data) is queued |
//! | `POST /index/{document}`, form field `text` | the same, for the sync [`index_words`](fn@index_words) |
//! | `GET /jobs/{id}` | `200`, `{"id", "command", "state", "attempt", "last_error"}`; `404` for an unknown id |
//!
//! The handlers await their enqueues (`f::enqueue(…).await`): a Redis round
//! trip goes out on the backend's async connection, and a SQL write runs
//! on outband's own bounded blocking pool, so either way the threads that
//! drive every connection never wait on the queue. The request waits only
//! for the enqueue, never for the job. A backend that cannot be reached
//! answers `503 Service Unavailable`, so a client or a load balancer may try
//! again; any other failure is a `500`.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use outband::{BaseQueue, JobId};
use serde::{Deserialize, Serialize};

use crate::commands::{churn_data, index_words};

/// The routes, with the backend that `GET /jobs/{id}` reads.
///
/// `POST /churn/…` and `POST /index/…` enqueue onto the default backend
/// (`outband::set_default_backend`), exactly as the seed's view calls its
/// decorated function.
pub(crate) fn router(backend: Arc<dyn BaseQueue>) -> Router {
    Router::new()
        .route(
            "/churn/{some_val}/{another_val}",
            post(data_processing_view),
        )
        .route("/index/{document}", post(index_view))
        .route("/jobs/{id}", get(job_status))
        .with_state(backend)
}

/// The body of `POST /churn/…`: the data to churn.
#[derive(Debug, Deserialize)]
struct ChurnForm {
    payload: String,
}

/// The body of `POST /index/…`: the text to index.
#[derive(Debug, Deserialize)]
struct IndexForm {
    text: String,
}

/// The answer to a `POST` that queued a job.
#[derive(Debug, Serialize)]
struct Accepted {
    /// The id of the queued job, for `GET /jobs/{id}`.
    job: u64,
}

/// Queues `churn_data(some_val, payload, another_val)` and answers at once.
async fn data_processing_view(
    Path((some_val, another_val)): Path<(u64, i64)>,
    Form(form): Form<ChurnForm>,
) -> Response {
    accepted(churn_data::enqueue(some_val, form.payload, another_val).await)
}

/// Queues `index_words(document, text)` and answers at once.
async fn index_view(Path(document): Path<u64>, Form(form): Form<IndexForm>) -> Response {
    accepted(index_words::enqueue(document, form.text).await)
}

/// `202 Accepted` with the job's id and where its status is, or the
/// enqueue's error.
fn accepted(enqueued: Result<impl Into<JobId>, outband::Error>) -> Response {
    match enqueued.map(Into::into) {
        Ok(id) => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/jobs/{id}"))],
            Json(Accepted { job: id.0 }),
        )
            .into_response(),
        Err(error) => queue_error(&error),
    }
}

/// The answer to `GET /jobs/{id}`.
#[derive(Debug, Serialize)]
struct JobStatus {
    id: u64,
    command: String,
    state: &'static str,
    attempt: u32,
    last_error: Option<String>,
}

/// A job's state, as the backend has it now.
///
/// Reading a job has no awaitable form yet, so this one call is made on
/// tokio's blocking pool.
async fn job_status(State(backend): State<Arc<dyn BaseQueue>>, Path(id): Path<u64>) -> Response {
    let found = tokio::task::spawn_blocking(move || backend.job(JobId(id))).await;
    match found {
        Ok(Ok(Some(job))) => Json(JobStatus {
            id: job.id.0,
            command: job.command,
            state: job.state.as_str(),
            attempt: job.attempt,
            last_error: job.last_error,
        })
        .into_response(),
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, format!("no job {id}\n")).into_response(),
        Ok(Err(error)) => queue_error(&error),
        Err(join) => {
            eprintln!("web-app: the blocking task failed: {join}");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

fn queue_error(error: &outband::Error) -> Response {
    eprintln!("web-app: {error}");
    let status = if error.is_retryable() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (status, format!("{error}\n")).into_response()
}

//! Live job updates as Server-Sent Events. Each stream starts with the job's current
//! state (the Watch RPCs send a snapshot first), so a browser that reconnects —
//! EventSource does so by itself — never misses the final state.

use crate::error::{ApiFailure, PageError};
use crate::model::Job;
use crate::session::{ApiCaller, SignedIn};
use crate::state::Web;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use forklift_domain::User;
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::time::Duration;

/// How long a browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(2);

/// One job's update as an SSE event (`event: job`) with the given id.
pub fn job_event(job: &Job, id: String) -> Event {
    Event::default()
        .event("job")
        .id(id)
        .retry(RETRY)
        .json_data(job.event())
        .unwrap_or_else(|_| Event::default().comment("unserialisable job"))
}

fn sse(stream: impl Stream<Item = Event> + Send + 'static) -> Response {
    let mut res = Sse::new(stream.map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Tell proxies (nginx) not to buffer the stream.
    res.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    res
}

async fn watch(web: &Web, user: &User, id: &str) -> Result<Response, tonic::Status> {
    let stream = web.jobs_api().watch(user, id).await?;
    let kinds = web.kinds().await?;
    let events = stream
        .take_while(|r| futures::future::ready(r.is_ok()))
        .filter_map(move |r| {
            // One job's stream: the id is its version.
            let ev = r.ok().map(|j| {
                let job = Job::from_proto(j, &kinds);
                job_event(&job, job.version.to_string())
            });
            futures::future::ready(ev)
        });
    Ok(sse(events))
}

/// `GET /jobs/{id}/events`: the signed-in owner's job, live.
pub async fn job_events(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    Ok(watch(&web, &user, &id).await?)
}

/// Follow a job's changes as Server-Sent Events (`event: job`), starting with its
/// current state; the stream ends after a final state.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", description = "`job` events with the job's id, state, progress, progress_message, error, final and version"),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn api_job_events(
    State(web): State<Web>,
    ApiCaller(user): ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    Ok(watch(&web, &user, &id).await?)
}

/// `GET /events`: every change to the signed-in user's jobs (the dashboard's live
/// rows). Each event's id is the job's update time in milliseconds; a reconnecting
/// browser sends the last one as `Last-Event-ID` and gets every job changed since.
pub async fn user_events(
    State(web): State<Web>,
    SignedIn(user): SignedIn,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .map(forklift_rpc::time::timestamp);
    let stream = web.jobs_api().watch_all(&user, since).await?;
    let kinds = web.kinds().await?;
    let events = stream
        .take_while(|r| futures::future::ready(r.is_ok()))
        .filter_map(move |r| {
            let ev = r.ok().map(|j| {
                let at = j.update_time.as_ref().map_or(0, forklift_rpc::time::millis);
                job_event(&Job::from_proto(j, &kinds), at.to_string())
            });
            futures::future::ready(ev)
        });
    Ok(sse(events))
}

//! The listener, the routes and the answers.
//!
//! Every answer but `/metrics` and a `.npy` result is JSON; every error is
//! `{"error": "one line"}` with its status. One access-log line per request
//! goes to stderr: peer, method, path, status, bytes, milliseconds, never
//! a header (so never a key).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{oneshot, Semaphore};

use crate::batch::{Batcher, Job, Refused, Settings};
use crate::decode::{decode, Rejected};
use crate::log::Log;
use crate::metrics::Metrics;
use crate::models::{Registry, Served};
use crate::{Config, StartError, INLINE_PARSE};

/// What every connection shares.
pub struct State {
    config: Config,
    keys: Option<Vec<Vec<u8>>>,
    registry: Registry,
    batchers: Mutex<HashMap<String, Arc<Batcher>>>,
    /// One slot per rayon thread: batches running at once.
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    stopping: AtomicBool,
    log: Log,
}

type Answer = Response<Full<Bytes>>;

impl State {
    pub fn new(config: Config, keys: Option<Vec<Vec<u8>>>, registry: Registry) -> State {
        State {
            config,
            keys,
            registry,
            batchers: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(rayon::current_num_threads().max(1))),
            metrics: Arc::new(Metrics::new()),
            stopping: AtomicBool::new(false),
            log: Log::start(),
        }
    }

    /// The queue of model `name`, started on first use.
    fn batcher(&self, name: &str) -> Arc<Batcher> {
        let mut map = self.batchers.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| {
                let settings = Settings {
                    max_batch: self.config.max_batch,
                    max_delay: self.config.max_delay,
                    max_queue: self.config.max_queue,
                };
                Arc::new(Batcher::start(
                    name.to_string(),
                    settings,
                    self.slots.clone(),
                    self.metrics.clone(),
                ))
            })
            .clone()
    }

    fn reload(&self) -> crate::models::ReloadReport {
        let report = self.registry.reload();
        for e in &report.errors {
            self.log.message(format!("bnn serve: reload: {e}"));
        }
        self.log.message(format!(
            "bnn serve: reloaded: serving {}",
            report.models.join(", ")
        ));
        report
    }
}

/// Listens until SIGTERM or SIGINT, then drains. SIGHUP reloads.
pub async fn serve(state: Arc<State>) -> Result<(), StartError> {
    let config = &state.config;
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.bind)))?;
    let signal_error = |e: std::io::Error| StartError(format!("cannot handle signals: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut hup = signal(SignalKind::hangup()).map_err(signal_error)?;
    let models: Vec<String> = state.registry.current().keys().cloned().collect();
    state.log.message(format!(
        "bnn serve: listening on http://{addr} (models: {})",
        models.join(", ")
    ));
    let reloader = state.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let state = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || state.reload()).await;
        }
    });
    let shutdown = async {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    };
    tokio::pin!(shutdown);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let why = loop {
        // Over the cap, clients wait in the kernel's backlog rather than
        // cost a task and buffers each.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit,
            why = &mut shutdown => break why,
        };
        let Ok(permit) = permit else { break "closed" };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it
                    // was accepted: wait a little rather than spin.
                    state.log.message(format!("bnn serve: accept failed: {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            why = &mut shutdown => break why,
        };
        let _ = stream.set_nodelay(true);
        let service_state = state.clone();
        let service = hyper::service::service_fn(move |req| {
            let state = service_state.clone();
            async move { Ok::<_, Infallible>(handle(state, req, peer).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_timeout)
            // A client that shuts its sending side down mid-body still
            // gets its 400.
            .half_close(true)
            .serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(conn);
        let metrics = state.metrics.clone();
        metrics.connection_opened();
        tokio::spawn(async move {
            let _ = watched.await;
            metrics.connection_closed();
            drop(permit);
        });
    };
    drop(listener);
    state.stopping.store(true, Ordering::SeqCst);
    state.log.message(format!(
        "bnn serve: {why}: stopped accepting; answering the requests already accepted"
    ));
    tokio::select! {
        _ = graceful.shutdown() => state.log.message("bnn serve: every accepted request answered; exiting".into()),
        _ = tokio::time::sleep(config.drain_timeout) => state.log.message(format!(
            "bnn serve: requests still running after {:?} (--drain-timeout); exiting",
            config.drain_timeout
        )),
    }
    // Every access-log line reaches stderr before the process exits.
    let log_flushed = state.log.flush(std::time::Duration::from_secs(10));
    if !log_flushed {
        eprintln!("bnn serve: stderr did not take the last access-log lines within 10 s");
    }
    Ok(())
}

async fn handle(state: Arc<State>, req: Request<Incoming>, peer: SocketAddr) -> Answer {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let deadline = state.config.deadline;
    let (answer, images) = match tokio::time::timeout(deadline, route(&state, req)).await {
        Ok(done) => done,
        Err(_) => (
            error(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("not answered within the {deadline:?} deadline (--deadline-ms)"),
            ),
            0,
        ),
    };
    let elapsed = start.elapsed();
    let status = answer.status().as_u16();
    state.metrics.observe_request(status, elapsed);
    state.metrics.add_images(images);
    let shown: String = path.chars().take(200).collect();
    state.log.access(format!(
        "{peer} \"{method} {shown}\" {status} images={images} {:.3}ms",
        elapsed.as_secs_f64() * 1e3
    ));
    answer
}

fn json_answer(status: StatusCode, body: Vec<u8>) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Answer {
    let body = serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default();
    json_answer(status, body)
}

/// The request carries one of the keys (or none are needed). Every key
/// is compared, each in time independent of where it differs.
fn authorised(state: &State, req: &Request<Incoming>) -> Result<(), Answer> {
    let Some(keys) = &state.keys else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .and_then(|v| v.strip_prefix(b"Bearer "));
    let Some(given) = given else {
        return Err(unauthorised("missing Authorization: Bearer KEY header"));
    };
    let given = given.trim_ascii();
    let matched = keys
        .iter()
        .fold(false, |any, key| any | same_key(key, given));
    if matched {
        Ok(())
    } else {
        Err(unauthorised("wrong API key"))
    }
}

fn unauthorised(message: &str) -> Answer {
    let mut r = error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Whether `a == b`, in time that depends on the lengths only: every byte
/// is compared, with no early exit on the first difference.
pub fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

async fn route(state: &Arc<State>, req: Request<Incoming>) -> (Answer, usize) {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    if parts == ["healthz"] {
        return (
            only_get(&method)
                .unwrap_or_else(|| json_answer(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())),
            0,
        );
    }
    if let Err(denied) = authorised(state, &req) {
        return (denied, 0);
    }
    let answer = match parts.as_slice() {
        ["readyz"] => only_get(&method).unwrap_or_else(|| ready(state)),
        ["metrics"] => only_get(&method).unwrap_or_else(|| metrics(state)),
        ["v1", "models"] => only_get(&method).unwrap_or_else(|| list(state)),
        ["v1", "models", name] => {
            only_get(&method).unwrap_or_else(|| match state.registry.get(name) {
                Some(served) => json_answer(StatusCode::OK, served.info.clone()),
                None => no_model(name),
            })
        }
        ["v1", "models", name, "classify"] => {
            if method != Method::POST {
                return (wrong_method("POST"), 0);
            }
            let name = name.to_string();
            return classify(state, &name, req).await;
        }
        ["v1", "admin", "reload"] => {
            if method != Method::POST {
                return (wrong_method("POST"), 0);
            }
            let s = state.clone();
            match tokio::task::spawn_blocking(move || s.reload()).await {
                Ok(report) => {
                    let body =
                        serde_json::json!({"models": report.models, "errors": report.errors});
                    json_answer(
                        StatusCode::OK,
                        serde_json::to_vec(&body).unwrap_or_default(),
                    )
                }
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("reload failed: {e}"),
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no such endpoint: {}", shorten(&path)),
        ),
    };
    (answer, 0)
}

fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
}

fn only_get(method: &Method) -> Option<Answer> {
    (method != Method::GET && method != Method::HEAD).then(|| wrong_method("GET"))
}

fn wrong_method(allowed: &'static str) -> Answer {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("this endpoint takes {allowed}"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    r
}

fn no_model(name: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        &format!(
            "no model named {:?} (GET /v1/models lists them)",
            shorten(name)
        ),
    )
}

fn ready(state: &State) -> Answer {
    if state.stopping.load(Ordering::SeqCst) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let n = state.registry.current().len();
    let body = serde_json::json!({"ready": true, "models": n});
    json_answer(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn metrics(state: &State) -> Answer {
    let queues: Vec<(String, usize)> = {
        let map = state.batchers.lock().unwrap_or_else(|e| e.into_inner());
        let mut q: Vec<_> = map.iter().map(|(k, b)| (k.clone(), b.queued())).collect();
        q.sort();
        q
    };
    let mut r = Response::new(Full::new(Bytes::from(state.metrics.render(&queues))));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

fn list(state: &State) -> Answer {
    let set = state.registry.current();
    let mut body = b"{\"models\":[".to_vec();
    for (i, served) in set.values().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&served.info);
    }
    body.extend_from_slice(b"]}");
    json_answer(StatusCode::OK, body)
}

#[derive(Serialize)]
struct Classified<'a> {
    model: &'a str,
    classes: &'a [usize],
    scores: Vec<&'a [f32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<&'a str>>,
}

async fn classify(state: &Arc<State>, name: &str, req: Request<Incoming>) -> (Answer, usize) {
    let Some(served) = state.registry.get(name) else {
        return (no_model(name), 0);
    };
    let config = &state.config;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_body as u64) {
        return (too_large(config.max_body), 0);
    }
    let npy_out = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-npy"));
    let limited = Limited::new(req.into_body(), config.max_body);
    let body = match tokio::time::timeout(config.body_timeout, limited.collect()).await {
        Err(_) => {
            return (
                error(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "the body did not arrive within {:?} (--body-timeout-ms)",
                        config.body_timeout
                    ),
                ),
                0,
            )
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return (too_large(config.max_body), 0)
        }
        Ok(Err(e)) => {
            return (
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body was cut short or malformed: {e}"),
                ),
                0,
            )
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let model = served.model.clone();
    let max_images = config.max_images;
    let decoded = if body.len() > INLINE_PARSE {
        match tokio::task::spawn_blocking(move || decode(&body, &model, max_images)).await {
            Ok(decoded) => decoded,
            Err(e) => Err(Rejected {
                status: 500,
                message: format!("decoding failed: {e}"),
            }),
        }
    } else {
        decode(&body, &model, max_images)
    };
    let inputs = match decoded {
        Ok(inputs) => inputs,
        Err(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
            return (error(status, &r.message), 0);
        }
    };
    let count = inputs.count;
    let (tx, rx) = oneshot::channel();
    let job = Job {
        model: served.model.clone(),
        pixels: inputs.pixels,
        count,
        reply: tx,
    };
    match state.batcher(name).submit(job) {
        Ok(()) => {}
        Err(Refused::Full) => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "the queue of model {name:?} is full ({} images, --max-queue): retry shortly",
                    config.max_queue
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return (r, 0);
        }
        Err(Refused::Closed) => {
            return (error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"), 0)
        }
    }
    let predictions = match rx.await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return (error(StatusCode::INTERNAL_SERVER_ERROR, &e), 0),
        Err(_) => {
            return (
                error(StatusCode::INTERNAL_SERVER_ERROR, "the batch was lost"),
                0,
            )
        }
    };
    let answer = if npy_out {
        npy_answer(&predictions)
    } else {
        classified_json(&served, &predictions)
    };
    (answer, count)
}

fn too_large(max: usize) -> Answer {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is larger than the {max} bytes accepted (--max-body)"),
    )
}

/// The records `bnn classify --format npy` writes: class and scores.
fn npy_answer(p: &bnn_core::Predictions) -> Answer {
    let n = p.classes.len();
    let mut body = bnn_io::records::npy_header(n as u64, p.num_classes, true);
    body.reserve(n * (8 + 4 * p.num_classes));
    for i in 0..n {
        bnn_io::records::npy_row(&mut body, p.classes[i], p.scores_of(i), true);
    }
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-npy"),
    );
    r
}

fn classified_json(served: &Served, p: &bnn_core::Predictions) -> Answer {
    let names = served.model.class_names();
    let answer = Classified {
        model: &served.name,
        classes: &p.classes,
        scores: (0..p.classes.len()).map(|i| p.scores_of(i)).collect(),
        labels: names.map(|names| p.classes.iter().map(|&c| names[c].as_str()).collect()),
    };
    match serde_json::to_vec(&answer) {
        Ok(body) => json_answer(StatusCode::OK, body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot write the answer: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(same_key(b"secret", b"secret"));
        assert!(!same_key(b"secret", b"secreT"));
        assert!(!same_key(b"secret", b"Secret"));
        assert!(!same_key(b"secret", b"secret2"));
        assert!(!same_key(b"", b"x"));
    }
}

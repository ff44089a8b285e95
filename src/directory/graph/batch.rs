//! JSON batching (graph-contract 1.10): up to 20 independent requests per `POST /$batch`, answers in
//! any order mapped back by id, and each item retried on its own when Graph throttles it (429 inside a
//! 200 batch) or fails it transiently. Only idempotent requests are batched.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, Url};

use super::http::{Call, Http, is_retryable_status, parse_retry_after};
use super::limiter::Cost;
use crate::directory::{DirectoryError, GraphFailure};
use crate::graph::wire::{BatchRequest, BatchRequestItem, BatchResponse, MAX_BATCH_REQUESTS, ODataError, paths};

/// One request of a batch. `url` is relative to the version root (`/users/{id}`).
#[derive(Clone, Debug, PartialEq)]
pub struct SubRequest {
    pub method: Method,
    pub url: String,
    pub body: Option<serde_json::Value>,
}

impl SubRequest {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self { method, url: url.into(), body: None }
    }
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }
    fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

/// The answer to one request of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct SubResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Option<serde_json::Value>,
}

impl SubResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn odata_error(&self) -> Option<ODataError> {
        self.body.as_ref().and_then(|b| serde_json::from_value(b.clone()).ok())
    }
    /// The item's failure in Graph's terms.
    pub fn failure(&self, req: &SubRequest) -> GraphFailure {
        let e = self.odata_error();
        GraphFailure {
            method: req.method.to_string(),
            path: req.url.clone(),
            status: self.status,
            code: e.as_ref().map(|e| e.error.code.clone()).unwrap_or_default(),
            detail_code: e.as_ref().and_then(|e| e.detail_code().map(str::to_string)),
            message: e.as_ref().map(|e| e.error.message.clone()).unwrap_or_default(),
            request_id: e
                .as_ref()
                .and_then(|e| e.request_id().map(str::to_string))
                .or_else(|| self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("request-id")).map(|(_, v)| v.clone())),
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("retry-after")).and_then(|(_, v)| parse_retry_after(v))
    }
}

/// Splits requests into batches of at most `MAX_BATCH_REQUESTS`, keeping their order.
pub fn split<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    items.chunks(MAX_BATCH_REQUESTS).map(<[T]>::to_vec).collect()
}

/// Runs `requests` (independent and idempotent) and returns one answer per request, in order. A single
/// request goes out on its own; more go through `$batch`. Items that stay throttled or failing once the
/// retry budget is spent come back with their last status: the caller maps each to its object.
pub async fn run(http: &Http, root: &Url, requests: &[SubRequest]) -> Result<Vec<SubResponse>, DirectoryError> {
    if requests.len() == 1 {
        let r = &requests[0];
        let url = join(root, &r.url)?;
        let cost = if r.is_write() { Cost::Write } else { Cost::read(&url) };
        let mut call = Call::new(r.method.clone(), url, cost).idempotent();
        if let Some(b) = &r.body {
            call = call.json(b.clone());
        }
        let resp = http.send(&call).await?;
        let headers =
            resp.headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string()))).collect();
        let body = if resp.body.is_empty() { None } else { serde_json::from_slice(&resp.body).ok() };
        return Ok(vec![SubResponse { status: resp.status, headers, body }]);
    }

    let batch_url = join(root, paths::BATCH)?;
    let mut answers: Vec<Option<SubResponse>> = vec![None; requests.len()];
    let mut pending: Vec<usize> = (0..requests.len()).collect();
    let started = Instant::now();
    let mut round = 0u32;
    while !pending.is_empty() {
        round += 1;
        let mut again = Vec::new();
        let mut wait = Duration::ZERO;
        for chunk in split(&pending) {
            let body = BatchRequest {
                requests: chunk
                    .iter()
                    .map(|&i| {
                        let r = &requests[i];
                        let item = BatchRequestItem::new(i.to_string(), r.method.as_str(), r.url.clone());
                        match &r.body {
                            Some(b) => item.with_json_body(b.clone()),
                            None => item,
                        }
                    })
                    .collect(),
            };
            let writes = chunk.iter().filter(|&&i| requests[i].is_write()).count() as f64;
            let mut reads = 0.0;
            for &i in chunk.iter().filter(|&&i| !requests[i].is_write()) {
                if let Cost::Read(ru) = Cost::read(&join(root, &requests[i].url)?) {
                    reads += ru;
                }
            }
            let call = Call::new(Method::POST, batch_url.clone(), Cost::Batch { reads, writes })
                .json(serde_json::to_value(&body).map_err(|e| DirectoryError::Invalid(format!("encoding a $batch: {e}")))?)
                .idempotent();
            let resp: BatchResponse = http.send(&call).await?.json()?;
            let mut by_id: BTreeMap<String, SubResponse> = resp
                .responses
                .into_iter()
                .map(|r| (r.id, SubResponse { status: r.status, headers: r.headers.unwrap_or_default(), body: r.body }))
                .collect();
            for &i in &chunk {
                match by_id.remove(&i.to_string()) {
                    Some(sub) if is_retryable_status(sub.status) => {
                        let w = sub.retry_after().unwrap_or_else(|| http.retry.backoff(round - 1));
                        if sub.status == 429 {
                            http.limiter.pause_for(w);
                        }
                        wait = wait.max(w);
                        answers[i] = Some(sub);
                        again.push(i);
                    }
                    Some(sub) => answers[i] = Some(sub),
                    // Graph answers every item; a missing one is retried like a transient failure.
                    None => {
                        wait = wait.max(http.retry.backoff(round - 1));
                        again.push(i);
                    }
                }
            }
        }
        if again.is_empty() || round >= http.retry.max_attempts || started.elapsed() + wait > http.retry.max_total {
            pending = vec![];
            for i in again {
                if answers[i].is_none() {
                    return Err(DirectoryError::Transport(format!(
                        "{} {}: no answer in $batch after {round} rounds",
                        requests[i].method, requests[i].url
                    )));
                }
            }
        } else {
            tracing::debug!(items = again.len(), ?wait, round, "retrying throttled or failed $batch items");
            tokio::time::sleep(wait).await;
            pending = again;
        }
    }
    Ok(answers.into_iter().map(|a| a.expect("every item answered")).collect())
}

/// `root` + a path relative to it (which may carry a query).
pub fn join(root: &Url, relative: &str) -> Result<Url, DirectoryError> {
    let s = format!("{}{}", root.as_str().trim_end_matches('/'), relative);
    Url::parse(&s).map_err(|e| DirectoryError::Invalid(format!("bad Graph URL {s}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_20_and_keep_order() {
        let items: Vec<usize> = (0..45).collect();
        let chunks = split(&items);
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![20, 20, 5]);
        assert_eq!(chunks.concat(), items);
        assert!(split::<usize>(&[]).is_empty());
        assert_eq!(split(&items[..20]).len(), 1);
    }

    #[test]
    fn join_keeps_queries() {
        let root = Url::parse("http://127.0.0.1:8080/v1.0").unwrap();
        assert_eq!(join(&root, "/users?$top=5").unwrap().as_str(), "http://127.0.0.1:8080/v1.0/users?$top=5");
    }
}

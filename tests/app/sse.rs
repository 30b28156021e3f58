//! A minimal Server-Sent Events reader for the tests of `GET /events`.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration as StdDuration;

/// One received server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// A minimal SSE reader over a streaming response.
pub struct SseClient {
    resp: reqwest::Response,
    buf: String,
}

impl SseClient {
    /// Connects anonymously to `{base}/events{query}`, resuming after `last`.
    pub async fn connect(base: &str, query: &str, last: Option<&str>) -> SseClient {
        Self::connect_with(base, query, last, None).await
    }

    /// Connects with API key `key` (None: anonymously).
    pub async fn connect_with(
        base: &str,
        query: &str,
        last: Option<&str>,
        key: Option<&str>,
    ) -> SseClient {
        let client = reqwest::Client::new();
        let mut req = client.get(format!("{base}/events{query}"));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l);
        }
        let resp = req.send().await.expect("connect /events");
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        SseClient {
            resp,
            buf: String::new(),
        }
    }

    /// The next event, or `None` after `wait` without one.
    pub async fn next(&mut self, wait: StdDuration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf[..pos].to_string();
                self.buf.drain(..pos + 2);
                let (mut id, mut event, mut data) =
                    (String::new(), String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some(Sse {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                });
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                _ => return None,
            }
        }
    }

    /// The next `n` events (each within 5 s), or a panic naming what came.
    pub async fn take(&mut self, n: usize) -> Vec<Sse> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next(StdDuration::from_secs(5)).await {
                Some(e) => out.push(e),
                None => panic!("expected {n} events, got {}: {out:?}", out.len()),
            }
        }
        out
    }
}

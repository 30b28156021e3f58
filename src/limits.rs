//! Limits every request meets before routing, authentication or its body: the length of
//! its target and the size of its head (a JSON 414 or 431, the service's error shape,
//! rather than the HTTP layer's bare status), and per-key rate limits on the endpoints that
//! change data or run excavation checks (429 with `Retry-After`).
//!
//! Rates are per credential (an API key, or a token's subject), as a GCRA bucket
//! (`governor`): `n` per minute, with bursts of up to `n`. Requests without a credential,
//! or with one that does not verify, are left to the handler, which refuses them.

use crate::auth::Authenticator;
use crate::config::HttpLimits;
use crate::state::AppState;
use crate::AppError;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;

/// What a request does, for its rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `POST /excavation/check`.
    Check,
    /// `POST /sensors/readings`.
    Ingest,
    /// Any other request that is not a read (POST, PUT, PATCH, DELETE).
    Write,
}

impl Class {
    /// The class of a request; `None` for reads, which are not rate-limited.
    pub fn of(method: &Method, path: &str) -> Option<Class> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return None;
        }
        Some(match path {
            "/excavation/check" => Class::Check,
            "/sensors/readings" => Class::Ingest,
            _ => Class::Write,
        })
    }
}

/// One keyed limiter per class (`None`: that class is unlimited).
pub struct RateLimits {
    checks: Option<DefaultKeyedRateLimiter<String>>,
    ingest: Option<DefaultKeyedRateLimiter<String>>,
    writes: Option<DefaultKeyedRateLimiter<String>>,
}

/// Buckets kept before idle ones are dropped.
const MAX_TRACKED_KEYS: usize = 10_000;

impl RateLimits {
    /// The limiters of `limits`.
    pub fn new(limits: &HttpLimits) -> RateLimits {
        let limiter = |per_minute: u32| {
            NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
        };
        RateLimits {
            checks: limiter(limits.checks_per_minute),
            ingest: limiter(limits.ingest_per_minute),
            writes: limiter(limits.writes_per_minute),
        }
    }

    /// `Ok` when `who` may make a request of `class` now, else how many whole seconds to
    /// wait.
    pub fn check(&self, class: Class, who: &str) -> Result<(), u64> {
        let limiter = match class {
            Class::Check => &self.checks,
            Class::Ingest => &self.ingest,
            Class::Write => &self.writes,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if limiter.len() > MAX_TRACKED_KEYS {
            limiter.retain_recent();
        }
        let key = who.to_owned();
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            // Rounded up: a client that waits the advertised time is let through.
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// What the limits need of the service: its settings, the limiters and the authenticator
/// (a few handles, so the per-request clone is one `Arc`).
pub struct Gate {
    http: HttpLimits,
    rates: Arc<RateLimits>,
    auth: Arc<Authenticator>,
}

impl Gate {
    /// The gate of a running service.
    pub fn of(state: &AppState) -> Arc<Gate> {
        Arc::new(Gate {
            http: state.config.http.clone(),
            rates: state.rate_limits.clone(),
            auth: state.auth.clone(),
        })
    }

    /// The request, admitted (carrying its verified caller for a write), or the refusal:
    /// size limits first, then the caller's rate limit.
    pub async fn admit(&self, mut req: Request) -> Result<Request, Response> {
        let limits = &self.http;
        let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if target > limits.max_uri_bytes {
            return Err(AppError::Client(
                StatusCode::URI_TOO_LONG,
                format!(
                    "the request target is {target} bytes; at most {} are accepted (send long CQL2 filters in fewer bytes, or split the request)",
                    limits.max_uri_bytes
                ),
            )
            .into_response());
        }
        let head: usize = req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        if head > limits.max_header_bytes {
            return Err(AppError::Client(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "the request's headers are {head} bytes; at most {} are accepted",
                    limits.max_header_bytes
                ),
            )
            .into_response());
        }
        if let Some(class) = Class::of(req.method(), req.uri().path()) {
            let key = crate::http::presented_key(req.headers()).map(str::to_owned);
            if let Some(actor) = self.caller(key).await {
                let who = match actor.key_id {
                    Some(id) => format!("key:{id}"),
                    None => actor.name.clone(),
                };
                if let Err(secs) = self.rates.check(class, &who) {
                    return Err(too_many(class, secs));
                }
                // The handler's `Caller` takes it from here rather than verifying the
                // credential a second time (a token's signature check is not cached).
                req.extensions_mut().insert(crate::http::Verified(actor));
            }
        }
        Ok(req)
    }

    /// The actor of a presented credential that verifies.
    async fn caller(&self, key: Option<String>) -> Option<crate::model::Actor> {
        self.auth.authenticate(Some(key?.as_str())).await.ok()
    }
}

fn too_many(class: Class, secs: u64) -> Response {
    let what = match class {
        Class::Check => "excavation checks",
        Class::Ingest => "reading batches",
        Class::Write => "writes",
    };
    let mut response = AppError::Client(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many {what} with this key; retry in {secs} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_limited_and_writes_are_classed_by_path() {
        assert_eq!(Class::of(&Method::GET, "/excavation/check"), None);
        assert_eq!(
            Class::of(&Method::POST, "/excavation/check"),
            Some(Class::Check)
        );
        assert_eq!(
            Class::of(&Method::POST, "/sensors/readings"),
            Some(Class::Ingest)
        );
        assert_eq!(
            Class::of(&Method::DELETE, "/features/pipelines/3"),
            Some(Class::Write)
        );
    }

    #[test]
    fn a_key_gets_its_quota_then_a_wait_and_other_keys_are_unaffected() {
        let limits = RateLimits::new(&HttpLimits {
            checks_per_minute: 3,
            writes_per_minute: 0,
            ..HttpLimits::default()
        });
        for _ in 0..3 {
            assert_eq!(limits.check(Class::Check, "key:1"), Ok(()));
        }
        let wait = limits.check(Class::Check, "key:1").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert_eq!(limits.check(Class::Check, "key:2"), Ok(()));
        // 0 per minute: unlimited.
        for _ in 0..100 {
            assert_eq!(limits.check(Class::Write, "key:1"), Ok(()));
        }
    }
}

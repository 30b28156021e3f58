//! The one source of the current time: [`Clock`].
//!
//! Every rule that depends on "now" (an excavation's start date in the past or too far
//! ahead, ticket deadlines and validity, the readings' accepted window, alarm stamps and
//! the offline rule, the notification retry back-off) reads it from the service's `Clock`,
//! never from the system directly. In production the clock is the system's; tests set it,
//! so no test passes or fails depending on the day it runs. Commit stamps that a database
//! records by itself (`updated_at`, the audit log's `at`) are the store's own time, and no
//! rule compares them with this clock.
//!
//! A clock is a cheap, shared handle: clones see the same time, and [`Clock::set`] or
//! [`Clock::advance`] on one moves them all. A set clock keeps running at real speed from
//! the instant it was set, so timeouts, SSE keep-alives and the order of events behave as
//! in production.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The current time, as the service sees it. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system clock (0 in production).
    offset_ms: Arc<AtomicI64>,
}

/// A clock setting that could not be read (see [`Clock::parse_setting`]).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("clock setting '{0}' is neither an RFC 3339 instant, a date (YYYY-MM-DD), nor an offset like +730d or -3h")]
pub struct ClockSettingError(pub String);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `t` now and runs on at real speed.
    pub fn starting_at(t: DateTime<Utc>) -> Clock {
        let c = Clock::default();
        c.set(t);
        c
    }

    /// A clock `d` ahead of the system clock (behind when negative).
    pub fn offset_by(d: Duration) -> Clock {
        let c = Clock::default();
        c.advance(d);
        c
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) so that it reads `t` now.
    pub fn set(&self, t: DateTime<Utc>) {
        let offset = (t - Utc::now()).num_milliseconds();
        self.offset_ms.store(offset, Ordering::Relaxed);
    }

    /// Moves this clock (and every clone of it) forward by `d` (back when negative).
    pub fn advance(&self, d: Duration) {
        self.offset_ms
            .fetch_add(d.num_milliseconds(), Ordering::Relaxed);
    }

    /// How far this clock runs ahead of the system's.
    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Reads a clock setting, as tests take it from `LIFELINE_TEST_CLOCK` (the service
    /// itself reads no such variable): an RFC 3339 instant (`2028-12-07T09:00:00+08:00`),
    /// a date (`2028-12-07`, midnight UTC), or an offset from the system clock in days,
    /// hours or minutes (`+730d`, `-3h`, `+90m`). An empty setting is the system clock.
    pub fn parse_setting(s: &str) -> Result<Clock, ClockSettingError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Clock::system());
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Clock::starting_at(t.with_timezone(&Utc)));
        }
        if let Ok(d) = s.parse::<chrono::NaiveDate>() {
            return Ok(Clock::starting_at(
                d.and_time(chrono::NaiveTime::MIN).and_utc(),
            ));
        }
        let bad = || ClockSettingError(s.to_string());
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let unit = rest.chars().last().ok_or_else(bad)?;
        let n: i64 = rest[..rest.len() - unit.len_utf8()]
            .parse()
            .map_err(|_| bad())?;
        let d = match unit {
            'd' => Duration::try_days(n),
            'h' => Duration::try_hours(n),
            'm' => Duration::try_minutes(n),
            _ => None,
        }
        .filter(|d| d.num_days().abs() <= 100 * 366)
        .ok_or_else(bad)?;
        Ok(Clock::offset_by(d * sign))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
        (a - b).num_milliseconds().abs() < 5_000
    }

    #[test]
    fn clones_share_one_time() {
        let c = Clock::starting_at("2030-01-01T00:00:00Z".parse().unwrap());
        let d = c.clone();
        assert!(close(d.now(), "2030-01-01T00:00:00Z".parse().unwrap()));
        c.advance(Duration::days(2));
        assert!(close(d.now(), "2030-01-03T00:00:00Z".parse().unwrap()));
        d.set("2031-06-01T12:00:00Z".parse().unwrap());
        assert!(close(c.now(), "2031-06-01T12:00:00Z".parse().unwrap()));
    }

    #[test]
    fn settings_are_read_or_named() {
        let sys = Utc::now();
        assert!(close(Clock::parse_setting("").unwrap().now(), sys));
        let ahead = Clock::parse_setting("+730d").unwrap();
        assert!(close(ahead.now(), sys + Duration::days(730)));
        assert_eq!(ahead.offset().num_days(), 730);
        let behind = Clock::parse_setting("-3h").unwrap();
        assert!(close(behind.now(), sys - Duration::hours(3)));
        let at = Clock::parse_setting("2028-12-07T09:00:00+08:00").unwrap();
        assert!(close(at.now(), "2028-12-07T01:00:00Z".parse().unwrap()));
        let day = Clock::parse_setting("2028-12-07").unwrap();
        assert!(close(day.now(), "2028-12-07T00:00:00Z".parse().unwrap()));
        for bad in ["tomorrow", "+", "+12", "+5y", "+99999999999d", "12d"] {
            assert_eq!(
                Clock::parse_setting(bad).unwrap_err(),
                ClockSettingError(bad.into()),
                "{bad}"
            );
        }
    }
}

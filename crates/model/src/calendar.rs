//! Working-day arithmetic for ticket deadlines and validity windows (issue 4).
//!
//! KLIC gives owners "one working day" and a ticket "20 working days"; in China the working
//! week is Monday–Friday, minus the public holidays the State Council announces each year,
//! plus the weekend days it declares working days (调休) to bridge long holidays. Those
//! dates are data (`[tickets.calendar]` in `data/excavation.toml`), validated at load.
//!
//! A duration of `h` hours counted in working days is `h` hours of working-day time: time
//! only elapses on a working day (00:00–24:00 local time), so a 24 h deadline set on a
//! Friday at 15:00 falls on Monday at 15:00, and one set on a Saturday falls at the end of
//! Monday. `count = "calendar"` turns this off (plain clock hours).

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

crate::string_enum! {
    /// How ticket deadlines and validity windows count days.
    pub enum DayCount {
        Working = "working",
        Calendar = "calendar",
    }
}

/// Which days are working days, and whether deadlines count only those.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// `working` (deadlines skip weekends and holidays) or `calendar` (clock hours).
    pub count: DayCount,
    /// Local civil time's offset from UTC, `+08:00` for China; holidays are local dates.
    pub utc_offset: String,
    /// Days of the week that are not worked (`Sat`, `Sun`, …).
    pub weekend: Vec<String>,
    /// Public holidays (dates off that would otherwise be working days, and weekend days
    /// inside a holiday, listed for clarity).
    pub holidays: Vec<NaiveDate>,
    /// Weekend days declared working days (调休).
    pub working_days: Vec<NaiveDate>,
    /// The last date the holiday lists cover; later dates count weekends only.
    pub covered_until: NaiveDate,
    /// The last date whose holidays come from the State Council's notice; the lists after
    /// it (up to `covered_until`) are provisional (statutory days only). Absent: all of
    /// the lists are confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_until: Option<NaiveDate>,
}

/// How many days before the calendar runs out `lifeline check` and `/ready` warn.
pub const COVERAGE_WARNING_DAYS: i64 = 60;

impl Default for CalendarSettings {
    /// Plain calendar days (what a settings file without `[tickets.calendar]` gets).
    fn default() -> Self {
        CalendarSettings {
            count: DayCount::Calendar,
            utc_offset: "+00:00".into(),
            weekend: vec!["Sat".into(), "Sun".into()],
            holidays: vec![],
            working_days: vec![],
            covered_until: NaiveDate::MIN,
            confirmed_until: None,
        }
    }
}

/// Longest span one deadline computation walks (a guard; validity is at most a year).
const MAX_WALK_DAYS: i64 = 3 * 366;

impl CalendarSettings {
    /// Checks the settings; the message names the field. Sorts the date lists.
    pub fn validate(&mut self) -> Result<(), String> {
        self.offset()?;
        let mut seen = Vec::new();
        for w in &self.weekend {
            let d: Weekday = w.parse().map_err(|_| {
                format!("tickets.calendar.weekend: '{w}' is not a day of the week (Mon..Sun)")
            })?;
            if seen.contains(&d) {
                return Err(format!("tickets.calendar.weekend: '{w}' is listed twice"));
            }
            seen.push(d);
        }
        if seen.len() > 6 {
            return Err(
                "tickets.calendar.weekend: at least one day of the week must be worked".into(),
            );
        }
        self.holidays.sort_unstable();
        self.working_days.sort_unstable();
        for (name, list) in [
            ("holidays", &self.holidays),
            ("working_days", &self.working_days),
        ] {
            if let Some(w) = list.windows(2).find(|w| w[0] == w[1]) {
                return Err(format!("tickets.calendar.{name}: {} is listed twice", w[0]));
            }
            if let Some(d) = list.iter().find(|d| **d > self.covered_until) {
                return Err(format!(
                    "tickets.calendar.{name}: {d} is after covered_until {}",
                    self.covered_until
                ));
            }
        }
        if self.confirmed_until.is_some_and(|c| c > self.covered_until) {
            return Err(format!(
                "tickets.calendar.confirmed_until must not be after covered_until {}",
                self.covered_until
            ));
        }
        if let Some(d) = self
            .working_days
            .iter()
            .find(|d| self.holidays.binary_search(d).is_ok())
        {
            return Err(format!(
                "tickets.calendar: {d} is both a holiday and a working day"
            ));
        }
        if let Some(d) = self
            .working_days
            .iter()
            .find(|d| !seen.contains(&d.weekday()))
        {
            return Err(format!(
                "tickets.calendar.working_days: {d} is a {}, already a working day; list only adjusted weekend days",
                d.weekday()
            ));
        }
        Ok(())
    }

    /// The local offset.
    pub fn offset(&self) -> Result<FixedOffset, String> {
        self.utc_offset.parse::<FixedOffset>().map_err(|_| {
            format!(
                "tickets.calendar.utc_offset: '{}' is not an offset like +08:00",
                self.utc_offset
            )
        })
    }

    fn local_offset(&self) -> FixedOffset {
        // Validated at load; a default offset is only reachable for hand-built settings.
        self.offset()
            .unwrap_or_else(|_| FixedOffset::east_opt(0).expect("zero offset"))
    }

    /// Whether `d` (a local date) is worked: an adjusted working day, or not a holiday and
    /// not a weekend day.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.working_days.binary_search(&d).is_ok() {
            return true;
        }
        if self.holidays.binary_search(&d).is_ok() {
            return false;
        }
        let wd = d.weekday();
        !self
            .weekend
            .iter()
            .any(|w| w.parse::<Weekday>().is_ok_and(|x| x == wd))
    }

    /// The local date of an instant.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.local_offset()).date_naive()
    }

    /// The last second of local date `d`, as an instant.
    pub fn end_of_day(&self, d: NaiveDate) -> DateTime<Utc> {
        let local = d.and_hms_opt(23, 59, 59).expect("valid time");
        self.to_utc(local)
    }

    /// The first second of local date `d`, as an instant.
    pub fn start_of_day(&self, d: NaiveDate) -> DateTime<Utc> {
        self.to_utc(d.and_hms_opt(0, 0, 0).expect("valid time"))
    }

    fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        (local - self.local_offset()).and_utc()
    }

    /// `start` plus `hours`: clock hours in `calendar` mode, hours of working-day time in
    /// `working` mode (see the module docs).
    pub fn add_hours(&self, start: DateTime<Utc>, hours: i64) -> DateTime<Utc> {
        if self.count == DayCount::Calendar {
            return start + Duration::hours(hours);
        }
        self.add_working(start, Duration::hours(hours))
    }

    /// `start` plus `d` of working-day time, whatever the mode.
    pub fn add_working(&self, start: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        let off = self.local_offset();
        let mut t = start.with_timezone(&off).naive_local();
        let mut left = d;
        for _ in 0..MAX_WALK_DAYS {
            let day = t.date();
            let next = day
                .succ_opt()
                .and_then(|n| n.and_hms_opt(0, 0, 0))
                .expect("dates within chrono's range");
            if self.is_working_day(day) {
                let avail = next - t;
                if left <= avail {
                    return self.to_utc(t + left);
                }
                left -= avail;
            }
            t = next;
        }
        // Not reachable with the validated settings (at least one working weekday); count
        // the rest in clock time rather than loop on.
        self.to_utc(t + left)
    }

    /// What a deadline or validity window ending at `until` should warn of: holidays
    /// beyond the calendar's coverage are not known (counted as weekends only), or those
    /// after `confirmed_until` are provisional. `None` in `calendar` mode, which ignores
    /// holidays, and for instants the confirmed lists cover.
    pub fn coverage_warning(&self, until: DateTime<Utc>) -> Option<String> {
        if self.count == DayCount::Calendar {
            return None;
        }
        let day = self.local_date(until);
        if day > self.covered_until {
            return Some(format!(
                "holidays after {} are not known: deadlines after that date count weekends only",
                self.covered_until
            ));
        }
        match self.confirmed_until {
            Some(c) if day > c => Some(format!(
                "holidays after {c} are provisional (statutory days only, until the State Council's notice)"
            )),
            _ => None,
        }
    }

    /// The warning for operators (`lifeline check`, `/ready`) from
    /// [`COVERAGE_WARNING_DAYS`] before the holiday lists run out on `today` (a local
    /// date); `None` before that, and in `calendar` mode.
    pub fn expiry_warning(&self, today: NaiveDate) -> Option<String> {
        if self.count == DayCount::Calendar {
            return None;
        }
        let left = (self.covered_until - today).num_days();
        if left > COVERAGE_WARNING_DAYS {
            return None;
        }
        Some(if left < 0 {
            format!(
                "the working-day calendar ended on {}: ticket deadlines now count weekends only; add the next year's holidays to [tickets.calendar]",
                self.covered_until
            )
        } else {
            format!(
                "the working-day calendar runs out on {} (in {left} days): add the next year's holidays to [tickets.calendar]",
                self.covered_until
            )
        })
    }

    /// Working days in the local dates `from..=to` (for reports).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        from.iter_days()
            .take_while(|d| *d <= to)
            .filter(|d| self.is_working_day(*d))
            .count() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn cal() -> CalendarSettings {
        crate::ticket::fixtures::builtin_settings().calendar
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn builtin_calendar_knows_the_2026_holidays() {
        let c = cal();
        assert_eq!(c.count, DayCount::Working);
        // 国庆 2026: 1–7 October off; Sunday 20 September and Saturday 10 October worked.
        for day in 1..=7 {
            assert!(!c.is_working_day(NaiveDate::from_ymd_opt(2026, 10, day).unwrap()));
        }
        assert!(c.is_working_day(d("2026-09-20")), "调休 Sunday");
        assert!(c.is_working_day(d("2026-10-10")), "调休 Saturday");
        assert!(c.is_working_day(d("2026-10-08")));
        assert!(!c.is_working_day(d("2026-10-11")), "an ordinary Sunday");
        // 春节 2026: 15–23 February, with 14 and 28 February worked.
        assert!(!c.is_working_day(d("2026-02-16")), "a Monday inside 春节");
        assert!(c.is_working_day(d("2026-02-14")));
        assert!(c.is_working_day(d("2026-02-28")));
        assert_eq!(c.working_days_between(d("2026-02-09"), d("2026-03-01")), 11);
        // 2026 in all: 261 weekdays, 19 of them holidays, plus 6 调休 weekend days.
        assert_eq!(
            c.working_days_between(d("2026-01-01"), d("2026-12-31")),
            248
        );
    }

    #[test]
    fn deadlines_skip_the_national_day_week() {
        let c = cal();
        // Submitted Wednesday 30 September 2026, 10:00 Beijing time: one working day later
        // is Thursday 8 October, 10:00 (1–7 October are off).
        let due = c.add_hours(at("2026-09-30T10:00:00+08:00"), 24);
        assert_eq!(due, at("2026-10-08T10:00:00+08:00"));
        // Submitted on a holiday: the clock starts on the next working day.
        let due = c.add_hours(at("2026-10-03T15:00:00+08:00"), 24);
        assert_eq!(due, at("2026-10-09T00:00:00+08:00"));
        // Friday 9 October 17:00 + 1 working day: Saturday 10 October is a 调休 working day.
        let due = c.add_hours(at("2026-10-09T17:00:00+08:00"), 24);
        assert_eq!(due, at("2026-10-10T17:00:00+08:00"));
        // Saturday 10 October 17:00 + 1 working day: Sunday is off, so Monday 17:00.
        let due = c.add_hours(at("2026-10-10T17:00:00+08:00"), 24);
        assert_eq!(due, at("2026-10-12T17:00:00+08:00"));
        // 20 working days from Monday 28 September, 00:00: 28–30 Sep, 8–10 Oct (10th a
        // 调休 Saturday), 12–16, 19–23 and 26–29 Oct; the 20th ends at 00:00 on 30 Oct.
        let until = c.add_hours(at("2026-09-28T00:00:00+08:00"), 20 * 24);
        assert_eq!(until, at("2026-10-30T00:00:00+08:00"));
        // Half a day: hours within one working day stay on that day.
        let due = c.add_hours(at("2026-10-08T09:00:00+08:00"), 2);
        assert_eq!(due, at("2026-10-08T11:00:00+08:00"));
    }

    #[test]
    fn calendar_mode_counts_clock_hours() {
        let mut c = cal();
        c.count = DayCount::Calendar;
        let start = at("2026-09-30T10:00:00+08:00");
        assert_eq!(c.add_hours(start, 24), start + Duration::hours(24));
        // Working-day time is still available explicitly.
        assert_eq!(
            c.add_working(start, Duration::hours(24)),
            at("2026-10-08T10:00:00+08:00")
        );
    }

    #[test]
    fn bad_calendars_are_named() {
        let mut c = cal();
        c.weekend.push("Caturday".into());
        assert!(c.validate().unwrap_err().contains("Caturday"));
        let mut c = cal();
        c.working_days.push(d("2026-10-01"));
        assert!(c.validate().unwrap_err().contains("2026-10-01"));
        let mut c = cal();
        c.working_days.push(d("2026-10-14"));
        assert!(c.validate().unwrap_err().contains("already a working day"));
        let mut c = cal();
        c.utc_offset = "Beijing".into();
        assert!(c.validate().unwrap_err().contains("utc_offset"));
        let mut c = cal();
        c.holidays.push(d("2031-01-01"));
        assert!(c.validate().unwrap_err().contains("covered_until"));
        let mut c = cal();
        c.weekend = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            .map(String::from)
            .to_vec();
        assert!(c.validate().unwrap_err().contains("at least one"));
    }

    #[test]
    fn coverage_is_known_and_warned_of() {
        let c = cal();
        assert_eq!(c.covered_until, d("2027-12-31"));
        assert_eq!(c.confirmed_until, Some(d("2026-12-31")));
        // Inside the confirmed lists: nothing to say.
        assert_eq!(c.coverage_warning(at("2026-12-31T12:00:00+08:00")), None);
        // The provisional year, and beyond the lists: named with the date.
        let w = c.coverage_warning(at("2027-03-01T10:00:00+08:00")).unwrap();
        assert!(w.contains("after 2026-12-31 are provisional"), "{w}");
        // 00:30 on 1 January 2028 in Beijing is still 2027 in UTC: local dates decide.
        let w = c.coverage_warning(at("2028-01-01T00:30:00+08:00")).unwrap();
        assert!(w.contains("holidays after 2027-12-31 are not known"), "{w}");
        // Operators are warned from 60 days before the end, and after it.
        assert_eq!(c.expiry_warning(d("2027-10-31")), None);
        let w = c.expiry_warning(d("2027-11-01")).unwrap();
        assert!(w.contains("runs out on 2027-12-31 (in 60 days)"), "{w}");
        let w = c.expiry_warning(d("2028-02-01")).unwrap();
        assert!(w.contains("ended on 2027-12-31"), "{w}");
        // Plain calendar days know no holidays, so there is nothing to warn of.
        let mut plain = c.clone();
        plain.count = DayCount::Calendar;
        assert_eq!(plain.coverage_warning(at("2030-01-01T00:00:00Z")), None);
        assert_eq!(plain.expiry_warning(d("2030-01-01")), None);
        let mut bad = c;
        bad.confirmed_until = Some(d("2028-01-01"));
        assert!(bad.validate().unwrap_err().contains("confirmed_until"));
    }

    #[test]
    fn end_of_day_is_local() {
        let c = cal();
        assert_eq!(
            c.end_of_day(d("2026-11-30")),
            at("2026-11-30T23:59:59+08:00")
        );
        assert_eq!(c.local_date(at("2026-11-30T20:00:00Z")), d("2026-12-01"));
        assert_eq!(c.start_of_day(d("2026-12-01")), at("2026-11-30T16:00:00Z"));
    }
}

//! ISO week labels (`2026-W48`) for the operator commands: parse one into its
//! [Monday 00:00 UTC, next Monday) range, or name the week before a moment.

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};

use crate::model::iso_week;

/// An ISO week: its label and its [start, end) in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Week {
    pub label: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Week {
    /// The week containing `at`.
    pub fn containing(at: DateTime<Utc>) -> Week {
        let (label, start, end) = iso_week(at);
        Week { label, start, end }
    }

    /// The last full week before the one containing `at` (what a Monday run pays out).
    pub fn before(at: DateTime<Utc>) -> Week {
        Week::containing(Week::containing(at).start - Duration::seconds(1))
    }

    /// Parses `YYYY-Www` (e.g. `2026-W48`; `2026-w48` and `2026W48` too).
    pub fn parse(text: &str) -> anyhow::Result<Week> {
        let t = text.trim().to_ascii_uppercase();
        let (year, week) = t
            .split_once("-W")
            .or_else(|| t.split_once('W'))
            .with_context(|| format!("'{text}' is not an ISO week like 2026-W48"))?;
        let year: i32 = year
            .parse()
            .with_context(|| format!("'{text}': bad year"))?;
        let week: u32 = week
            .parse()
            .with_context(|| format!("'{text}': bad week number"))?;
        let Some(monday) = NaiveDate::from_isoywd_opt(year, week, Weekday::Mon) else {
            bail!("'{text}': year {year} has no ISO week {week}");
        };
        let start = Utc.from_utc_datetime(&monday.and_time(NaiveTime::MIN));
        let parsed = Week::containing(start);
        // from_isoywd_opt already refuses week 53 in 52-week years; this guards the label.
        if parsed.start != start {
            bail!("'{text}': not a valid ISO week");
        }
        Ok(parsed)
    }

    /// Whether the week is over at `now` (its results can no longer change).
    pub fn is_over(&self, now: DateTime<Utc>) -> bool {
        now >= self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, s)
            .single()
            .expect("valid date")
    }

    #[test]
    fn parses_labels_into_monday_ranges() {
        let w = Week::parse("2026-W48").expect("valid");
        assert_eq!(w.label, "2026-W48");
        assert_eq!(w.start, at(2026, 11, 23, 0, 0, 0));
        assert_eq!(w.end, at(2026, 11, 30, 0, 0, 0));
        assert_eq!(Week::parse("2026w48").expect("lenient"), w);
        // ISO week 1 of 2026 starts in December 2025; 2026 has 53 weeks.
        assert_eq!(
            Week::parse("2026-W01").expect("valid").start,
            at(2025, 12, 29, 0, 0, 0)
        );
        assert_eq!(
            Week::parse("2026-W53").expect("valid").end,
            at(2027, 1, 4, 0, 0, 0)
        );
        assert!(Week::parse("2025-W53").is_err(), "2025 has 52 ISO weeks");
        assert!(Week::parse("2026-W00").is_err());
        assert!(Week::parse("2026-48").is_err());
        assert!(Week::parse("last week").is_err());
    }

    #[test]
    fn the_week_before_rolls_over_at_monday_midnight() {
        assert_eq!(Week::before(at(2026, 11, 30, 0, 0, 0)).label, "2026-W48");
        assert_eq!(Week::before(at(2026, 11, 29, 23, 59, 59)).label, "2026-W47");
        assert_eq!(Week::before(at(2027, 1, 4, 0, 0, 1)).label, "2026-W53");
        let w = Week::parse("2026-W48").expect("valid");
        assert!(!w.is_over(at(2026, 11, 29, 23, 59, 59)));
        assert!(w.is_over(at(2026, 11, 30, 0, 0, 0)));
    }
}

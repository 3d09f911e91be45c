//! The ISO week: the period of the weekly leaderboard, its rewards and its Redis set.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc};

/// The ISO week containing `now`: its label (`2026-W48`) and its [start, end) in UTC.
pub fn iso_week(now: DateTime<Utc>) -> (String, DateTime<Utc>, DateTime<Utc>) {
    let week = now.iso_week();
    let monday = now.date_naive() - Duration::days(now.weekday().num_days_from_monday() as i64);
    let start = Utc.from_utc_datetime(&monday.and_time(NaiveTime::MIN));
    (
        format!("{}-W{:02}", week.year(), week.week()),
        start,
        start + Duration::days(7),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_week_boundaries_are_monday_midnight_utc() {
        let sunday_late = Utc
            .with_ymd_and_hms(2026, 11, 29, 23, 59, 59)
            .single()
            .expect("valid date");
        let (label, start, end) = iso_week(sunday_late);
        assert_eq!(label, "2026-W48");
        assert_eq!(
            start,
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0)
                .single()
                .expect("valid date")
        );
        assert_eq!(
            end,
            Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
                .single()
                .expect("valid date")
        );
        let monday = Utc
            .with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
            .single()
            .expect("valid date");
        assert_eq!(iso_week(monday).0, "2026-W49");
        // ISO years differ from calendar years around New Year.
        let new_year = Utc
            .with_ymd_and_hms(2027, 1, 1, 12, 0, 0)
            .single()
            .expect("valid date");
        assert_eq!(iso_week(new_year).0, "2026-W53");
    }
}

//! Wall-clock time and the time formats Ring uses (ISO 8601 with and without
//! milliseconds, AWS SigV4 dates). Token and ticket expiry use
//! `tokio::time::Instant` instead; this is only for timestamps shown to clients.

use time::OffsetDateTime;
use time::macros::format_description;

/// Wall-clock now in ms since the epoch.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Ring's ISO time with milliseconds, `2024-03-05T15:03:40.123Z`.
pub fn iso_ms(ms: i64) -> String {
    let f =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    datetime(ms).format(&f).unwrap_or_default()
}

/// ISO time without fraction, `2024-03-05T15:03:40Z`.
pub fn iso_s(ms: i64) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    datetime(ms).format(&f).unwrap_or_default()
}

/// AWS SigV4 date, `20240305T150340Z`.
pub fn amz_date(ms: i64) -> String {
    let f = format_description!("[year][month][day]T[hour][minute][second]Z");
    datetime(ms).format(&f).unwrap_or_default()
}

/// Parses an AWS SigV4 date back to ms since the epoch.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let f = format_description!("[year][month][day]T[hour][minute][second]Z");
    let dt = time::PrimitiveDateTime::parse(s, &f).ok()?;
    Some((dt.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_round_trip() {
        let ms = 1_760_000_000_000;
        assert_eq!(parse_amz_date(&amz_date(ms)), Some(ms));
        assert_eq!(iso_ms(ms), "2025-10-09T08:53:20.000Z");
    }
}

//! Query-string values shared by the list routes (task history, events).

use crate::error::{ApiError, ApiResult};

/// `since` / `until`: an RFC 3339 time, as milliseconds since the epoch.
pub fn parse_time(name: &str, raw: &str) -> ApiResult<i64> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_filter",
                format!("{name} must be RFC 3339, not `{raw}`"),
            )
        })
}

/// `limit`: a page size from 1 to `max`.
pub fn parse_limit(raw: &str, max: u32) -> ApiResult<u32> {
    raw.parse::<u32>()
        .ok()
        .filter(|l| (1..=max).contains(l))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_filter",
                format!("limit must be 1 to {max}, not `{raw}`"),
            )
        })
}

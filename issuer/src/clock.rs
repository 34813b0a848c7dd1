//! The one place that reads wall time.
//!
//! Everything else receives `now` as a value, so expiry, grace windows and revocation times
//! are decided on one reading per operation and can be tested with fixed times.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clock;

impl Clock {
    /// The current time.
    #[allow(clippy::disallowed_methods, reason = "this is the clock module")]
    pub(crate) fn now(self) -> DateTime<Utc> {
        Utc::now()
    }

    /// A new UUIDv7, whose leading bits are the current time in milliseconds.
    pub(crate) fn new_uuid_v7(self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Unix seconds of `time`, clamped at zero (no token or revocation predates 1970).
pub(crate) fn unix_secs(time: DateTime<Utc>) -> u64 {
    u64::try_from(time.timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_secs_clamps_before_the_epoch() {
        assert_eq!(
            unix_secs(DateTime::from_timestamp(1_767_225_600, 999).unwrap()),
            1_767_225_600
        );
        assert_eq!(unix_secs(DateTime::from_timestamp(-5, 0).unwrap()), 0);
    }

    #[test]
    fn uuids_are_version_7() {
        assert_eq!(Clock.new_uuid_v7().get_version_num(), 7);
    }
}

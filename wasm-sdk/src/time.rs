//! Time as JavaScript hands it over: a number of unix seconds.

/// The largest time accepted, 2^53 − 1: the largest integer a JS number holds exactly, and the
/// core's own bound on `exp`, `nbf` and `iat`.
const MAX_UNIX_SECS: f64 = 9_007_199_254_740_991.0;

/// `now` as whole unix seconds, or `None` for NaN, infinities, negatives, fractions and values
/// past [`MAX_UNIX_SECS`].
///
/// The time crosses the boundary as an `f64` because a `u64` parameter would be a `BigInt` in
/// JavaScript, which costs an allocation per call and is easy to pass wrongly.
pub(crate) fn unix_secs(now: f64) -> Option<u64> {
    if !(0.0..=MAX_UNIX_SECS).contains(&now) || now.fract() != 0.0 {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked above: a whole number from 0 to 2^53 - 1 converts exactly"
    )]
    Some(now as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_secs_whole_numbers_in_range_convert_exactly() {
        assert_eq!(unix_secs(0.0), Some(0));
        assert_eq!(unix_secs(1_767_225_600.0), Some(1_767_225_600));
        assert_eq!(unix_secs(MAX_UNIX_SECS), Some((1 << 53) - 1));
    }

    #[test]
    fn unix_secs_other_numbers_are_refused() {
        for bad in [
            -1.0,
            -0.5,
            0.5,
            1_767_225_600.25,
            MAX_UNIX_SECS + 2.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert_eq!(unix_secs(bad), None, "{bad}");
        }
    }
}

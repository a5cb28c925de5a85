//! The quiet-hour predicate of ops spec §0.6: whether a local hour lies in a quiet window
//! (used by the heartbeat; the window may wrap past midnight).

/// Whether `hour` (0–23, local) is quiet in the window `start`..`end`: `start == end` is never
/// quiet; `start < end` is quiet for `start <= hour < end`; otherwise the window wraps past
/// midnight and is quiet for `hour >= start || hour < end`.
#[must_use]
pub fn is_quiet(hour: u32, start: i64, end: i64) -> bool {
    let hour = i64::from(hour);
    if start == end {
        false
    } else if start < end {
        start <= hour && hour < end
    } else {
        hour >= start || hour < end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_window_is_never_quiet() {
        assert!((0..24).all(|h| !is_quiet(h, 8, 8)));
        assert!((0..24).all(|h| !is_quiet(h, 0, 0)));
    }

    #[test]
    fn a_plain_window_includes_its_start_and_excludes_its_end() {
        let quiet: Vec<u32> = (0..24).filter(|&h| is_quiet(h, 9, 12)).collect();
        assert_eq!(quiet, [9, 10, 11]);
    }

    #[test]
    fn a_window_over_midnight_wraps() {
        let quiet: Vec<u32> = (0..24).filter(|&h| is_quiet(h, 21, 8)).collect();
        assert_eq!(quiet, [0, 1, 2, 3, 4, 5, 6, 7, 21, 22, 23]);
        assert!(is_quiet(23, 21, 8), "23:00 is quiet with 21–8");
        assert!(!is_quiet(10, 21, 8), "10:00 is not");
    }

    #[test]
    fn out_of_range_bounds_compare_as_numbers() {
        // A start past 23 never matches in a plain window; the wrap rule still covers `< end`.
        assert!((0..24).all(|h| !is_quiet(h, 24, 30)));
        let quiet: Vec<u32> = (0..24).filter(|&h| is_quiet(h, 30, 2)).collect();
        assert_eq!(quiet, [0, 1]);
    }
}

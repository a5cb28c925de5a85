//! Local time for cron jobs, quiet hours and cleanup: which IANA zone applies (ops spec §0.5)
//! and whether an hour is quiet (§0.6, §7.4.3). Pure: the caller reads `TZ` and the host zone
//! (`store::host_zone`) and passes them in, at every use, so a hot-reloaded `user_timezone`
//! applies at the next computation.

use std::fmt;

use chrono_tz::Tz;

/// A configured zone name that is not an IANA zone; resolution fell through to `used`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneWarning {
    /// The name as configured.
    pub configured: String,
    /// The zone used instead.
    pub used: Tz,
}

impl fmt::Display for ZoneWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown IANA timezone {:?} in the config; using {}", self.configured, self.used.name())
    }
}

/// The zone name a cron job is configured with: its own `timezone` if set, else the config's
/// `user_timezone`; `None` when both are empty.
pub fn configured_zone_name<'a>(job_zone: Option<&'a str>, user_zone: &'a str) -> Option<&'a str> {
    job_zone.filter(|name| !name.is_empty()).or(Some(user_zone).filter(|name| !name.is_empty()))
}

/// The zone to use (§0.5): the first valid of the configured name, `TZ` (when it is an IANA
/// name), the host zone, UTC. An invalid configured name comes back as a warning to log; an
/// empty one counts as not configured.
pub fn resolve_zone(
    configured: Option<&str>,
    env_tz: Option<&str>,
    host_zone: Option<&str>,
) -> (Tz, Option<ZoneWarning>) {
    let configured = configured.filter(|name| !name.is_empty());
    if let Some(zone) = configured.and_then(parse_zone) {
        return (zone, None);
    }
    let used = [env_tz, host_zone].into_iter().flatten().find_map(parse_zone).unwrap_or(Tz::UTC);
    let warning = configured.map(|name| ZoneWarning { configured: name.to_owned(), used });
    (used, warning)
}

/// The zone name in the resolved target of `/etc/localtime`: what follows `/zoneinfo/`
/// (`/usr/share/zoneinfo/Europe/Berlin` → `Europe/Berlin`).
pub fn zone_name_from_localtime_target(target: &str) -> Option<&str> {
    target.split_once("/zoneinfo/").map(|(_, name)| name).filter(|name| !name.is_empty())
}

fn parse_zone(name: &str) -> Option<Tz> {
    name.parse().ok()
}

/// Whether `hour` (0–23, local) is inside the quiet window `start`..`end` (§0.6): never when
/// `start == end`; `start <= hour < end` when `start < end`; otherwise the window wraps
/// midnight (`hour >= start || hour < end`).
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

/// Whether a cron job's own quiet hours silence `hour` (§7.4.3): only when the job sets
/// `quiet_start` or `quiet_end`, a missing half counting as 0 (start 22 alone = 22:00–23:59).
pub fn cron_job_is_quiet(hour: u32, quiet_start: Option<i64>, quiet_end: Option<i64>) -> bool {
    if quiet_start.is_none() && quiet_end.is_none() {
        return false;
    }
    is_quiet(hour, quiet_start.unwrap_or(0), quiet_end.unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_zone_wins() {
        let (zone, warning) = resolve_zone(Some("Asia/Tokyo"), Some("Europe/Berlin"), Some("America/New_York"));
        assert_eq!((zone, warning), (Tz::Asia__Tokyo, None));
    }

    #[test]
    fn a_job_zone_overrides_the_user_zone() {
        let name = configured_zone_name(Some("Europe/Berlin"), "Asia/Tokyo");
        assert_eq!(resolve_zone(name, None, None), (Tz::Europe__Berlin, None));
        let name = configured_zone_name(Some(""), "Asia/Tokyo");
        assert_eq!(resolve_zone(name, None, None), (Tz::Asia__Tokyo, None));
        let name = configured_zone_name(None, "Asia/Tokyo");
        assert_eq!(resolve_zone(name, None, None), (Tz::Asia__Tokyo, None));
        assert_eq!(configured_zone_name(None, ""), None);
    }

    #[test]
    fn an_invalid_configured_zone_warns_and_falls_through() {
        let (zone, warning) = resolve_zone(Some("Mars/Olympus"), Some("Europe/Berlin"), None);
        assert_eq!(zone, Tz::Europe__Berlin);
        let warning = warning.unwrap();
        assert_eq!(warning.to_string(), "unknown IANA timezone \"Mars/Olympus\" in the config; using Europe/Berlin");
    }

    #[test]
    fn tz_then_host_then_utc() {
        assert_eq!(resolve_zone(None, Some("Europe/Berlin"), Some("Asia/Tokyo")), (Tz::Europe__Berlin, None));
        // A POSIX TZ string is not an IANA name: skipped without a warning.
        assert_eq!(resolve_zone(None, Some("CET-1CEST"), Some("Asia/Tokyo")), (Tz::Asia__Tokyo, None));
        assert_eq!(resolve_zone(Some(""), None, Some("Asia/Tokyo")), (Tz::Asia__Tokyo, None));
        assert_eq!(resolve_zone(None, None, Some("posix/Nowhere")), (Tz::UTC, None));
        assert_eq!(resolve_zone(None, None, None), (Tz::UTC, None));
    }

    #[test]
    fn host_zone_is_the_part_after_zoneinfo() {
        assert_eq!(zone_name_from_localtime_target("/usr/share/zoneinfo/Europe/Berlin"), Some("Europe/Berlin"));
        assert_eq!(zone_name_from_localtime_target("/nix/store/x-tzdata/share/zoneinfo/Etc/UTC"), Some("Etc/UTC"));
        assert_eq!(zone_name_from_localtime_target("/etc/localtime"), None);
        assert_eq!(zone_name_from_localtime_target("/usr/share/zoneinfo/"), None);
    }

    #[test]
    fn quiet_windows() {
        let quiet = |start, end| (0..24).filter(|hour| is_quiet(*hour, start, end)).collect::<Vec<u32>>();
        assert_eq!(quiet(9, 9), Vec::<u32>::new());
        assert_eq!(quiet(1, 4), [1, 2, 3]);
        assert_eq!(quiet(21, 8), [0, 1, 2, 3, 4, 5, 6, 7, 21, 22, 23]);
    }

    #[test]
    fn cron_job_quiet_hours_default_a_missing_half_to_0() {
        let quiet = |start, end| (0..24).filter(|hour| cron_job_is_quiet(*hour, start, end)).collect::<Vec<u32>>();
        assert_eq!(quiet(None, None), Vec::<u32>::new());
        assert_eq!(quiet(Some(22), None), [22, 23]);
        assert_eq!(quiet(None, Some(6)), [0, 1, 2, 3, 4, 5]);
        // §7.11 item 11: 0–23 silences 00:00 to 22:59; only the 23 o'clock hour runs.
        assert_eq!(quiet(Some(0), Some(23)), (0..23).collect::<Vec<u32>>());
    }
}

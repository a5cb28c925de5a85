//! Which time zone "the user's local time" means (ops spec §0.5): the first valid of the
//! configured IANA name, env `TZ`, the host's zone, UTC. Pure: the caller reads the environment
//! and the host's `/etc/localtime` link (`store::local_zone`) and hands the texts in.

use chrono_tz::Tz;

/// Where the chosen zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSource {
    /// The configured name (`user_timezone`, or a cron job's `timezone`).
    Configured,
    /// The `TZ` environment variable.
    Env,
    /// The host's zone (`/etc/localtime`).
    Host,
    /// Nothing valid was found.
    Utc,
}

/// The zone to use and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneChoice {
    /// The zone.
    pub zone: Tz,
    /// Where it came from.
    pub source: ZoneSource,
    /// A non-empty configured name that is no IANA zone (the caller logs a warning).
    pub configured_invalid: bool,
}

/// Resolves the zone from the configured name, the `TZ` variable and the host's zone name, in
/// that order; empty or unknown names are skipped.
#[must_use]
pub fn resolve_zone(configured: &str, env_tz: Option<&str>, host: Option<&str>) -> ZoneChoice {
    let configured = configured.trim();
    let configured_zone = parse(configured);
    let configured_invalid = !configured.is_empty() && configured_zone.is_none();
    let (zone, source) = configured_zone
        .map(|z| (z, ZoneSource::Configured))
        .or_else(|| env_tz.and_then(parse).map(|z| (z, ZoneSource::Env)))
        .or_else(|| host.and_then(parse).map(|z| (z, ZoneSource::Host)))
        .unwrap_or((Tz::UTC, ZoneSource::Utc));
    ZoneChoice { zone, source, configured_invalid }
}

/// The zone name in the resolved target of `/etc/localtime`: the part after `/zoneinfo/`
/// (`/usr/share/zoneinfo/Europe/Berlin` → `Europe/Berlin`).
#[must_use]
pub fn zone_name_from_link_target(target: &str) -> Option<&str> {
    let (_, name) = target.rsplit_once("/zoneinfo/")?;
    (!name.is_empty()).then_some(name)
}

fn parse(name: &str) -> Option<Tz> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    name.parse::<Tz>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_configured_name_wins() {
        let choice = resolve_zone("Europe/Berlin", Some("Asia/Tokyo"), Some("America/New_York"));
        assert_eq!(choice.zone, chrono_tz::Europe::Berlin);
        assert_eq!(choice.source, ZoneSource::Configured);
        assert!(!choice.configured_invalid);
    }

    #[test]
    fn an_invalid_configured_name_falls_through_and_is_flagged() {
        let choice = resolve_zone("Mars/Olympus", Some("Asia/Tokyo"), None);
        assert_eq!((choice.zone, choice.source), (chrono_tz::Asia::Tokyo, ZoneSource::Env));
        assert!(choice.configured_invalid);
    }

    #[test]
    fn empty_config_uses_env_then_host_then_utc() {
        let env = resolve_zone("", Some("Asia/Tokyo"), Some("Europe/Berlin"));
        assert_eq!((env.zone, env.source, env.configured_invalid), (chrono_tz::Asia::Tokyo, ZoneSource::Env, false));
        let host = resolve_zone("  ", Some(":/etc/localtime"), Some("Europe/Berlin"));
        assert_eq!((host.zone, host.source), (chrono_tz::Europe::Berlin, ZoneSource::Host));
        let utc = resolve_zone("", None, Some("nonsense"));
        assert_eq!((utc.zone, utc.source), (Tz::UTC, ZoneSource::Utc));
    }

    #[test]
    fn the_host_zone_is_the_part_after_zoneinfo() {
        assert_eq!(zone_name_from_link_target("/usr/share/zoneinfo/Europe/Berlin"), Some("Europe/Berlin"));
        assert_eq!(
            zone_name_from_link_target("/var/db/timezone/zoneinfo/America/Sao_Paulo"),
            Some("America/Sao_Paulo")
        );
        assert_eq!(zone_name_from_link_target("/etc/localtime"), None);
        assert_eq!(zone_name_from_link_target("/usr/share/zoneinfo/"), None);
    }
}

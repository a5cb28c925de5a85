//! The user's local zone as the host sees it (ops spec §0.5): reads env `TZ` and the target of
//! the `/etc/localtime` link, and resolves them with the configured name
//! ([`crate::core::zone::resolve_zone`]). Read at every use, so a changed `user_timezone`
//! applies at the next computation.

use chrono_tz::Tz;

use crate::core::zone::{resolve_zone, zone_name_from_link_target};

/// The host's zone name: the part after `/zoneinfo/` in the resolved target of
/// `/etc/localtime`; none when it is no link into a zoneinfo tree or cannot be read.
pub fn host_zone_name() -> Option<String> {
    let target = std::fs::canonicalize("/etc/localtime").ok()?;
    zone_name_from_link_target(target.to_str()?).map(str::to_owned)
}

/// The user's zone: `configured` (an IANA name; empty = none) if valid, else env `TZ`, else the
/// host's zone, else UTC. An invalid configured name is logged as a warning.
pub fn user_zone(configured: &str) -> Tz {
    let env_tz = std::env::var("TZ").ok();
    let host = host_zone_name();
    let choice = resolve_zone(configured, env_tz.as_deref(), host.as_deref());
    if choice.configured_invalid {
        tracing::warn!(configured = %configured, using = %choice.zone.name(),
            "The configured time zone is no IANA zone name; falling back.");
    }
    choice.zone
}

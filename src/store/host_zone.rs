//! The user's local zone as this host sees it (ops spec §0.5): the host's zone name from where
//! `/etc/localtime` points, and the zone for a configured name — the choice among configured
//! zone, `TZ`, host zone and UTC is `core::zone::resolve_zone`. Read at every use, so a changed
//! `user_timezone` applies at the next computation.

use std::path::Path;

use chrono_tz::Tz;

use crate::core::zone::{resolve_zone, zone_name_from_localtime_target};

/// The zone for a configured IANA name (`None` or empty: not configured): the name if valid,
/// else env `TZ`, else the host's zone, else UTC. An invalid configured name is logged.
pub fn local_zone(configured: Option<&str>) -> Tz {
    let env_tz = std::env::var("TZ").ok();
    let host = host_zone_name();
    let (zone, warning) = resolve_zone(configured, env_tz.as_deref(), host.as_deref());
    if let Some(warning) = warning {
        tracing::warn!(warning = %warning, "Configured time zone not usable.");
    }
    zone
}

/// The user's zone (`user_timezone`; empty = not configured).
pub fn user_zone(configured: &str) -> Tz {
    local_zone(Some(configured))
}

/// The host zone name (`Europe/Berlin`), or `None` when `/etc/localtime` is missing, not a link
/// into a `zoneinfo` folder, or this is not a POSIX system.
pub fn host_zone_name() -> Option<String> {
    if cfg!(unix) { host_zone_name_at(Path::new("/etc/localtime")) } else { None }
}

/// The zone name in the fully resolved target of the link at `link`.
pub fn host_zone_name_at(link: &Path) -> Option<String> {
    let target = std::fs::canonicalize(link).ok()?;
    zone_name_from_localtime_target(target.to_str()?).map(str::to_owned)
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_zone_from_the_link_target() {
        let dir = tempfile::tempdir().unwrap();
        let zone_file = dir.path().join("share/zoneinfo/America/New_York");
        std::fs::create_dir_all(zone_file.parent().unwrap()).unwrap();
        std::fs::write(&zone_file, b"TZif").unwrap();
        let link = dir.path().join("localtime");
        std::os::unix::fs::symlink(&zone_file, &link).unwrap();
        assert_eq!(host_zone_name_at(&link).as_deref(), Some("America/New_York"));
    }

    #[test]
    fn a_plain_file_or_nothing_gives_no_zone() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("localtime");
        std::fs::write(&plain, b"TZif").unwrap();
        assert_eq!(host_zone_name_at(&plain), None);
        assert_eq!(host_zone_name_at(&dir.path().join("missing")), None);
    }
}

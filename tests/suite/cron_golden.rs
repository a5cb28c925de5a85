//! Cron next-fire times against the golden table computed with croniter
//! (`tests/fixtures/cron/generate.py` → `golden.json`, ops spec §7.2, §7.3), and the cron
//! acceptance checks of §7.11 that need no running service (items 2, 3, 13, 14).

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ductor::core::cron_schedule::CronSchedule;
use ductor::core::zone::{configured_zone_name, resolve_zone};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    croniter: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    expr: String,
    zone: String,
    after: String,
    expected: Vec<String>,
    how: String,
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn golden() -> Golden {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cron/golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn next_fire_matches_the_croniter_golden_table() {
    let golden = golden();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in &golden.cases {
        let zone: Tz = case.zone.parse().unwrap();
        let schedule = match CronSchedule::parse(&case.expr) {
            Ok(schedule) => schedule,
            Err(error) => {
                failures.push(format!("{:?}: refused: {error}", case.expr));
                continue;
            }
        };
        let mut at = instant(&case.after);
        for (step, expected) in case.expected.iter().enumerate() {
            let got = schedule.next_fire(at, zone);
            checked += 1;
            if got != Some(instant(expected)) {
                let got = got.map_or_else(|| "nothing".to_owned(), |got| got.to_rfc3339());
                failures.push(format!(
                    "{:?} in {} after {} (fire {} of the chain from {}): expected {expected}, got {got} [{}]",
                    case.expr,
                    case.zone,
                    at.to_rfc3339(),
                    step + 1,
                    case.after,
                    case.how
                ));
                break;
            }
            at = instant(expected);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} next-fire checks differ from croniter {}:\n{}",
        failures.len(),
        golden.croniter,
        failures.join("\n")
    );
}

#[test]
fn the_golden_table_covers_what_the_spec_names() {
    let golden = golden();
    let expressions: std::collections::BTreeSet<&str> = golden.cases.iter().map(|case| case.expr.as_str()).collect();
    assert!(expressions.len() >= 40, "only {} expressions", expressions.len());
    for needed in ["0 0 13 * 5", "0 10 * * 0", "0 10 * * 7", "@daily", "30 2 * * *", "30 1 * * *", "0 9 * * *"] {
        assert!(expressions.contains(needed), "no rows for {needed:?}");
    }
    let zones: std::collections::BTreeSet<&str> = golden.cases.iter().map(|case| case.zone.as_str()).collect();
    assert_eq!(zones.into_iter().collect::<Vec<_>>(), ["America/New_York", "Asia/Tokyo", "Europe/Berlin", "UTC"]);
    let across_dst = |marker: &str| golden.cases.iter().filter(|case| case.how.contains(marker)).count();
    assert!(across_dst("skipped: offset before the jump") > 0, "no spring-forward rows");
    assert!(across_dst("repeated: first occurrence") > 0, "no fall-back rows");
    assert!(across_dst("passed over") > 0, "no rows from inside a repeated hour");
}

/// §7.11 item 2: `user_timezone: "Asia/Tokyo"`, schedule `0 9 * * *` → next fire at 00:00 UTC.
#[test]
fn nine_o_clock_in_tokyo_fires_at_midnight_utc() {
    let (zone, warning) = resolve_zone(configured_zone_name(None, "Asia/Tokyo"), None, None);
    assert!(warning.is_none());
    let schedule = CronSchedule::parse("0 9 * * *").unwrap();
    let fire = schedule.next_fire(instant("2025-06-01T12:00:00Z"), zone).unwrap();
    assert_eq!(fire, instant("2025-06-02T00:00:00Z"));
}

/// §7.11 item 3: a job's own `timezone` overrides `user_timezone`.
#[test]
fn a_job_timezone_overrides_the_user_timezone() {
    let schedule = CronSchedule::parse("0 9 * * *").unwrap();
    let after = instant("2025-06-01T12:00:00Z");
    let (zone, _) = resolve_zone(configured_zone_name(Some("Europe/Berlin"), "Asia/Tokyo"), Some("UTC"), None);
    assert_eq!(zone, Tz::Europe__Berlin);
    assert_eq!(schedule.next_fire(after, zone), Some(instant("2025-06-02T07:00:00Z")));
    // Without the job's own zone the user's applies; with neither, TZ.
    let (zone, _) = resolve_zone(configured_zone_name(Some(""), "Asia/Tokyo"), Some("UTC"), None);
    assert_eq!(schedule.next_fire(after, zone), Some(instant("2025-06-02T00:00:00Z")));
    let (zone, _) = resolve_zone(configured_zone_name(None, ""), Some("America/New_York"), None);
    assert_eq!(schedule.next_fire(after, zone), Some(instant("2025-06-01T13:00:00Z")));
    // An invalid job zone warns and falls through to TZ, not to the user's zone.
    let (zone, warning) = resolve_zone(configured_zone_name(Some("Nowhere/Land"), "Asia/Tokyo"), Some("UTC"), None);
    assert_eq!((zone, warning.is_some()), (Tz::UTC, true));
}

/// §7.11 item 13: `0 0 13 * 5` fires on the 13th and on Fridays.
#[test]
fn the_13th_and_every_friday() {
    let schedule = CronSchedule::parse("0 0 13 * 5").unwrap();
    let mut at = instant("2025-06-01T00:00:00Z");
    let mut days = Vec::new();
    while days.len() < 8 {
        at = schedule.next_fire(at, Tz::UTC).unwrap();
        days.push(at.format("%a %d.%m.").to_string());
    }
    // Friday the 13th of June fires once; Sunday the 13th of July and Wednesday the 13th of
    // August fire for the date alone.
    let want = [
        "Fri 06.06.",
        "Fri 13.06.",
        "Fri 20.06.",
        "Fri 27.06.",
        "Fri 04.07.",
        "Fri 11.07.",
        "Sun 13.07.",
        "Fri 18.07.",
    ];
    assert_eq!(days, want);
}

/// §7.11 item 14: `61 * * * *` is refused, and the error names the minute field.
#[test]
fn minute_61_is_refused_with_the_field_named() {
    let error = CronSchedule::parse("61 * * * *").unwrap_err().to_string();
    assert!(error.contains("minute"), "{error}");
    assert!(error.contains("61"), "{error}");
    // Another job's schedule is unaffected by it.
    assert!(CronSchedule::parse("*/1 * * * *").is_ok());
}

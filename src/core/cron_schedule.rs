//! Cron schedules (ops spec §7.2, §7.3): parsing the crontab dialect of `cron_jobs.json`, the
//! next fire instant in a job's IANA zone, and the wall-clock guard a timer runs on waking.
//!
//! # Dialect
//!
//! The standard 5-field crontab `minute hour day-of-month month day-of-week` with Vixie (Debian
//! cron) semantics: `*`, lists, ranges, steps (`*/15`, `1-30/5`, and `5/15` = `5-59/15`), month and
//! weekday names (`JAN`, `mon`, three letters, any case, also inside ranges: `MON-5`), weekdays
//! 0–7 with 0 and 7 both Sunday, `L` (last day of the month), `<dow>L` (last such weekday of the
//! month, e.g. `5L`), `<dow>#n` (n-th such weekday, e.g. `MON#2`). When day-of-month **and**
//! day-of-week are both restricted — neither field starts with `*` — a date matches if **either**
//! matches (`0 0 13 * 5` fires on every 13th and on every Friday); when one of them starts with
//! `*` (also `*/2`) both must match. A 6-field form with a leading seconds field is accepted too.
//!
//! Refused with a [`ScheduleError`] naming the field: out-of-range values, reversed ranges, zero
//! steps, unknown names, `W`/`LW` (nearest weekday), `?`, wrong field counts, and a day-of-month
//! that no selected month has when both day fields must match (`0 0 31 2 *`).
//!
//! **Difference from ductor 0.18.2:** the macros `@yearly`/`@annually`, `@monthly`, `@weekly`,
//! `@daily`/`@midnight` and `@hourly` are accepted (0.18.2 refused them and left such a job
//! unscheduled); `@reboot` is still refused.
//!
//! # How it is evaluated
//!
//! The `cron` crate does the parsing of each field and the calendar search. It wants a seconds
//! field, numbers weekdays 1–7 from Sunday and intersects day-of-month with day-of-week, so an
//! expression is translated first: a `0` seconds field is prepended to 5-field forms, names
//! become numbers, the weekday field is expanded to the crate's numbering, and the day fields are
//! split into several crate schedules ("branches") whose earliest match wins — one with only the
//! day-of-month restricted and one with only the day-of-week restricted for the OR case, one per
//! `L` / `<dow>L` / `<dow>#n` term, whose extra condition on the date filters the crate's matches.
//!
//! Matches are searched in naive local wall time; [`CronSchedule::next_fire`] turns the match
//! into an instant by the rules of §7.3 (see there).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use cron::{Schedule, TimeUnitSpec};

/// On waking, a timer fires when the recomputed match is at most this far in the future (§7.3).
pub const WAKE_TOLERANCE: Duration = Duration::seconds(30);

/// How many times in a row a timer re-checks the wall clock and sleeps again before it fires
/// anyway (§7.3 step 3).
pub const MAX_WAKE_CHECKS: u32 = 5;

/// The longest run of non-existent local times searched backwards for the offset before a
/// spring-forward gap (real gaps are one hour, at most a day).
const MAX_GAP_MINUTES: i64 = 48 * 60;

/// The fields of a cron expression, as errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleField {
    /// The optional leading seconds field of the 6-field form.
    Second,
    /// Minute, 0–59.
    Minute,
    /// Hour, 0–23.
    Hour,
    /// Day of the month, 1–31 or `L`.
    DayOfMonth,
    /// Month, 1–12 or `JAN`–`DEC`.
    Month,
    /// Day of the week, 0–7 (0 and 7 are Sunday) or `SUN`–`SAT`.
    DayOfWeek,
}

impl ScheduleField {
    /// The field's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::DayOfMonth => "day-of-month",
            Self::Month => "month",
            Self::DayOfWeek => "day-of-week",
        }
    }

    /// Smallest and largest plain value.
    fn bounds(self) -> (u32, u32) {
        match self {
            Self::Second | Self::Minute => (0, 59),
            Self::Hour => (0, 23),
            Self::DayOfMonth => (1, 31),
            Self::Month => (1, 12),
            Self::DayOfWeek => (0, 7),
        }
    }

    /// What the field accepts, for error messages.
    fn accepted(self) -> &'static str {
        match self {
            Self::Second | Self::Minute => "values 0-59",
            Self::Hour => "values 0-23",
            Self::DayOfMonth => "values 1-31 or L",
            Self::Month => "values 1-12 or JAN-DEC",
            Self::DayOfWeek => "values 0-7 (0 and 7 are Sunday) or SUN-SAT, <day>L, <day>#<1-5>",
        }
    }

    /// The crate expression that restricts only this field to `text`.
    fn probe(self, text: &str) -> String {
        match self {
            Self::Second => format!("{text} 0 0 * * *"),
            Self::Minute => format!("0 {text} 0 * * *"),
            Self::Hour => format!("0 0 {text} * * *"),
            Self::DayOfMonth => format!("0 0 0 {text} * *"),
            Self::Month => format!("0 0 0 * {text} *"),
            Self::DayOfWeek => format!("0 0 0 * * {text}"),
        }
    }
}

impl fmt::Display for ScheduleField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Nothing but white space.
    #[error("the cron expression is empty")]
    Empty,
    /// Neither 5 nor 6 fields.
    #[error(
        "cron expression `{expression}` has {count} fields; expected 5 (minute hour day-of-month month \
         day-of-week) or 6 (a leading second, then those 5)"
    )]
    FieldCount {
        /// The expression as written.
        expression: String,
        /// How many fields it has.
        count: usize,
    },
    /// An `@` word that is not one of the known macros.
    #[error(
        "`{0}` is not a cron macro ductor knows (@yearly, @annually, @monthly, @weekly, @daily, @midnight, \
         @hourly)"
    )]
    UnknownMacro(String),
    /// A field that does not parse or holds an out-of-range value.
    #[error("{field} field `{value}` is invalid: {reason}")]
    InvalidField {
        /// Which field.
        field: ScheduleField,
        /// The field as written.
        value: String,
        /// What is wrong, and what the field accepts.
        reason: String,
    },
    /// A token of a cron dialect this build does not evaluate.
    #[error("{field} field `{value}`: `{token}` is not supported ({reason})")]
    Unsupported {
        /// Which field.
        field: ScheduleField,
        /// The field as written.
        value: String,
        /// The token refused.
        token: String,
        /// What it would have meant.
        reason: &'static str,
    },
}

impl ScheduleError {
    fn invalid(field: ScheduleField, value: &str, reason: impl Into<String>) -> Self {
        Self::InvalidField { field, value: value.to_owned(), reason: reason.into() }
    }

    fn syntax(field: ScheduleField, value: &str) -> Self {
        Self::invalid(
            field,
            value,
            format!("expected {}, `*`, lists (a,b), ranges (a-b) and steps (*/n, a-b/n)", field.accepted()),
        )
    }
}

/// An extra condition on the date, for the tokens the crate has no syntax for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayRule {
    /// `L`: the last day of its month.
    LastDay,
    /// `<dow>L`: the crate restricts the weekday; this keeps the last one of the month.
    LastWeekday,
    /// `<dow>#n`: the crate restricts the weekday; this keeps the n-th one of the month.
    NthWeekday(u32),
}

impl DayRule {
    fn holds(self, date: NaiveDate) -> bool {
        let last = u32::from(date.num_days_in_month());
        match self {
            Self::LastDay => date.day() == last,
            Self::LastWeekday => date.day() + 7 > last,
            Self::NthWeekday(n) => date.day().div_ceil(7) == n,
        }
    }
}

/// One alternative of a day field: the crate's text for it and the condition it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DayTerm {
    crate_field: String,
    rule: Option<DayRule>,
}

impl DayTerm {
    fn any() -> Self {
        Self { crate_field: "*".to_owned(), rule: None }
    }
}

/// One crate schedule and the date conditions its matches must also meet.
#[derive(Debug, Clone)]
struct Branch {
    schedule: Schedule,
    rules: Vec<DayRule>,
}

impl Branch {
    /// First match strictly after `local` (naive wall time).
    fn next_after(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut cursor = local;
        loop {
            // UTC carries the naive wall time: it has no gaps or folds.
            let found = self.schedule.after(&cursor.and_utc()).next()?.naive_utc();
            if self.rules.iter().all(|rule| rule.holds(found.date())) {
                return Some(found);
            }
            // The rules only look at the date: go on from the end of that day.
            cursor = found.date().and_hms_opt(23, 59, 59)?;
        }
    }
}

/// What a timer does when it wakes up (ops spec §7.3 step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeCheck {
    /// The match is due: run the job.
    FireNow,
    /// The match is still this far ahead (the monotonic clock ran ahead of the wall clock): sleep
    /// again, then check again — at most [`MAX_WAKE_CHECKS`] times.
    SleepMore(Duration),
    /// The schedule has no match left at all: do not run.
    Exhausted,
}

/// A parsed cron schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    branches: Vec<Branch>,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl FromStr for CronSchedule {
    type Err = ScheduleError;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        Self::parse(expression)
    }
}

impl CronSchedule {
    /// Parses a 5-field (or seconds-first 6-field) crontab expression or a macro (module docs).
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let written = expression.trim();
        if written.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let upper = written.to_ascii_uppercase();
        let expanded = if upper.starts_with('@') {
            macro_fields(&upper).ok_or_else(|| ScheduleError::UnknownMacro(written.to_owned()))?
        } else {
            &upper
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (second, rest) = match fields.as_slice() {
            [minute, hour, dom, month, dow] => ("0", [*minute, *hour, *dom, *month, *dow]),
            [second, minute, hour, dom, month, dow] => (*second, [*minute, *hour, *dom, *month, *dow]),
            other => {
                return Err(ScheduleError::FieldCount { expression: written.to_owned(), count: other.len() });
            }
        };
        let [minute, hour, dom, month, dow] = rest;

        let second = plain_field(ScheduleField::Second, second, second)?;
        let minute = plain_field(ScheduleField::Minute, minute, minute)?;
        let hour = plain_field(ScheduleField::Hour, hour, hour)?;
        let month = plain_field(ScheduleField::Month, month, &names_to_numbers(ScheduleField::Month, month)?)?;
        let dom_terms = day_of_month_terms(dom)?;
        let dow_terms = day_of_week_terms(dow)?;

        // Vixie: a day field that starts with `*` makes the two day fields AND; otherwise OR.
        let days_and = dom.starts_with('*') || dow.starts_with('*');
        let any = DayTerm::any();
        let combos: Vec<(&DayTerm, &DayTerm)> = if days_and {
            dom_terms.iter().flat_map(|d| dow_terms.iter().map(move |w| (d, w))).collect()
        } else {
            dom_terms.iter().map(|d| (d, &any)).chain(dow_terms.iter().map(|w| (&any, w))).collect()
        };
        let mut branches = Vec::with_capacity(combos.len());
        for (d, w) in combos {
            let text = format!("{second} {minute} {hour} {} {month} {}", d.crate_field, w.crate_field);
            let schedule = Schedule::from_str(&text).map_err(|e| {
                ScheduleError::invalid(ScheduleField::DayOfWeek, dow, format!("the translated schedule `{text}`: {e}"))
            })?;
            let rules = [d.rule, w.rule].into_iter().flatten().collect();
            branches.push(Branch { schedule, rules });
        }

        if days_and && dom_terms.iter().all(|t| t.rule.is_none()) {
            refuse_impossible_day(dom, &branches)?;
        }
        Ok(Self { expression: written.to_owned(), branches })
    }

    /// The expression as written (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first matching wall time strictly after `local` (both naive, in the job's zone).
    pub fn next_local_after(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        self.branches.iter().filter_map(|branch| branch.next_after(local)).min()
    }

    /// The next instant the job fires after `after`, following ops spec §7.3: `after` is taken
    /// as wall time in `zone`; the first naive match strictly after it is converted with
    /// "fold=0" rules — an ambiguous fall-back time is its first (earlier) occurrence, a
    /// non-existent spring-forward time is read with the offset before the transition (02:30 in
    /// a 02→03 gap is 03:30 local) — and a match whose instant is not after `after` (the repeated
    /// hour of a fall-back) gives way to the following match. `None` when the schedule has no
    /// match left before the year 2100.
    pub fn next_fire(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let mut cursor = after.with_timezone(&zone).naive_local();
        loop {
            let local = self.next_local_after(cursor)?;
            if let Some(instant) = local_to_instant(zone, local)
                && instant > after
            {
                return Some(instant);
            }
            cursor = local;
        }
    }

    /// The wall-clock guard of §7.3 step 3, for a timer that wakes at wall-clock `now`: the first
    /// match after one minute before `now`; more than [`WAKE_TOLERANCE`] ahead → sleep the
    /// difference (the monotonic sleep ran short, e.g. across a suspend), else fire. On the day
    /// of a spring-forward gap this skips the gap's slot: the timer set for 02:30 wakes at 03:30,
    /// and the next match after 03:29 is tomorrow's.
    pub fn wake_check(&self, now: DateTime<Utc>, zone: Tz) -> WakeCheck {
        match self.next_fire(now - Duration::minutes(1), zone) {
            None => WakeCheck::Exhausted,
            Some(next) if next - now > WAKE_TOLERANCE => WakeCheck::SleepMore(next - now),
            Some(_) => WakeCheck::FireNow,
        }
    }
}

/// A naive wall time in `zone` as an instant, with Python's fold=0 rules (§7.3).
pub fn local_to_instant(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => {
            // In a gap: read it with the offset in force just before the transition, the offset
            // of the last wall time that exists before it.
            let before = (1..=MAX_GAP_MINUTES)
                .find_map(|minutes| zone.from_local_datetime(&(local - Duration::minutes(minutes))).latest())?;
            let offset = before.offset().fix().local_minus_utc();
            Some((local - Duration::seconds(i64::from(offset))).and_utc())
        }
    }
}

/// The 5 fields a macro stands for (`expression` upper-cased).
fn macro_fields(expression: &str) -> Option<&'static str> {
    Some(match expression {
        "@YEARLY" | "@ANNUALLY" => "0 0 1 1 *",
        "@MONTHLY" => "0 0 1 * *",
        "@WEEKLY" => "0 0 * * 0",
        "@DAILY" | "@MIDNIGHT" => "0 0 * * *",
        "@HOURLY" => "0 * * * *",
        _ => return None,
    })
}

/// Refuses the tokens of other cron dialects, naming them.
fn refuse_foreign_tokens(field: ScheduleField, value: &str) -> Result<(), ScheduleError> {
    let unsupported = |token: &str, reason| ScheduleError::Unsupported {
        field,
        value: value.to_owned(),
        token: token.to_owned(),
        reason,
    };
    if value.contains('W') && matches!(field, ScheduleField::DayOfMonth) {
        let token = value.split(',').find(|item| item.contains('W')).unwrap_or(value);
        return Err(unsupported(token, "the nearest weekday to a day of the month"));
    }
    if value.contains('?') {
        return Err(unsupported("?", "\"no specific value\" of Quartz cron; use `*`"));
    }
    Ok(())
}

/// A field the crate reads as it is (after names became numbers): checked on its own so the
/// error names it, with over-long steps reduced to what they select.
fn plain_field(field: ScheduleField, written: &str, text: &str) -> Result<String, ScheduleError> {
    refuse_foreign_tokens(field, written)?;
    let mut items = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(ScheduleError::invalid(field, written, "an empty list item"));
        }
        items.push(shorten_step(field, item));
    }
    let translated = items.join(",");
    Schedule::from_str(&field.probe(&translated)).map_err(|_| ScheduleError::syntax(field, written))?;
    Ok(translated)
}

/// Vixie takes any step; the crate refuses one larger than the field's maximum. Such a step
/// selects only the start of its range, which is what this returns.
fn shorten_step(field: ScheduleField, item: &str) -> String {
    let (low, high) = field.bounds();
    let Some((base, step)) = item.split_once('/') else { return item.to_owned() };
    match step.parse::<u32>() {
        Ok(step) if step > high => {}
        _ => return item.to_owned(),
    }
    if base == "*" {
        return low.to_string();
    }
    match base.split_once('-') {
        None => base.to_owned(),
        Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
            // The whole 0-based range with the largest step the crate takes would also select
            // its end: name the start alone.
            (Ok(a), Ok(b)) if b <= high && b.saturating_sub(a) >= high => a.to_string(),
            _ => format!("{base}/{high}"),
        },
    }
}

/// Month and weekday names (three letters) to their numbers; anything else is left alone.
fn names_to_numbers(field: ScheduleField, text: &str) -> Result<String, ScheduleError> {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(',')) {
        if c.is_ascii_alphabetic() {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            let number = name_number(field, &word).ok_or_else(|| {
                ScheduleError::invalid(field, text, format!("`{word}` is not a {} name", field.name()))
            })?;
            out.push_str(&number.to_string());
            word.clear();
        }
        out.push(c);
    }
    out.pop();
    Ok(out)
}

const MONTH_NAMES: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn name_number(field: ScheduleField, word: &str) -> Option<u32> {
    let (names, first): (&[&str], u32) = match field {
        ScheduleField::Month => (&MONTH_NAMES, 1),
        ScheduleField::DayOfWeek => (&WEEKDAY_NAMES, 0),
        _ => return None,
    };
    let index = names.iter().position(|name| *name == word)?;
    u32::try_from(index).ok().map(|i| i + first)
}

/// The day-of-month field as alternatives: the plain items together, and one per `L`.
fn day_of_month_terms(written: &str) -> Result<Vec<DayTerm>, ScheduleError> {
    let field = ScheduleField::DayOfMonth;
    refuse_foreign_tokens(field, written)?;
    let mut plain = Vec::new();
    let mut terms = Vec::new();
    for item in written.split(',') {
        if item == "L" {
            terms.push(DayTerm { crate_field: "28-31".to_owned(), rule: Some(DayRule::LastDay) });
        } else if item.contains('L') {
            return Err(ScheduleError::invalid(field, written, "`L` (the last day of the month) stands alone"));
        } else {
            plain.push(item);
        }
    }
    if !plain.is_empty() {
        let text = plain_field(field, written, &plain.join(","))?;
        terms.insert(0, DayTerm { crate_field: text, rule: None });
    }
    Ok(terms)
}

/// The day-of-week field as alternatives in the crate's numbering (1 = Sunday … 7 = Saturday):
/// the plain items expanded to one list, and one term per `<dow>L` and `<dow>#n`.
fn day_of_week_terms(written: &str) -> Result<Vec<DayTerm>, ScheduleError> {
    let field = ScheduleField::DayOfWeek;
    refuse_foreign_tokens(field, written)?;
    let invalid = |reason: String| ScheduleError::invalid(field, written, reason);
    let mut plain = BTreeSet::new();
    let mut terms = Vec::new();
    for item in written.split(',') {
        if item.is_empty() {
            return Err(invalid("an empty list item".to_owned()));
        }
        if let Some(day) = item.strip_suffix('L') {
            if day.is_empty() || !day.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!("`{item}`: the last weekday of the month is written <0-7>L, e.g. 5L")));
            }
            let day = weekday_value(day).map_err(invalid)?;
            terms.push(DayTerm { crate_field: crate_weekday(day).to_string(), rule: Some(DayRule::LastWeekday) });
        } else if let Some((day, nth)) = item.split_once('#') {
            let day = weekday_value(day).map_err(invalid)?;
            let nth = match nth.parse::<u32>() {
                Ok(n @ 1..=5) if nth.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(invalid(format!("`{item}`: the week in <day>#n runs 1-5"))),
            };
            terms.push(DayTerm { crate_field: crate_weekday(day).to_string(), rule: Some(DayRule::NthWeekday(nth)) });
        } else if item.contains('L') {
            return Err(invalid(format!("`{item}`: the last weekday of the month is written <0-7>L, e.g. 5L")));
        } else {
            plain.extend(weekday_item(item).map_err(invalid)?.into_iter().map(crate_weekday));
        }
    }
    if !plain.is_empty() {
        let list = plain.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        terms.insert(0, DayTerm { crate_field: list, rule: None });
    }
    Ok(terms)
}

/// Digits only (`parse` would also take a leading `+`).
fn step_text_is_plain(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Vixie weekday 0–7 (0 and 7 Sunday) in the crate's numbering, 1 (Sunday) – 7 (Saturday).
fn crate_weekday(day: u32) -> u32 {
    day % 7 + 1
}

/// A weekday number (0–7) or name.
fn weekday_value(token: &str) -> Result<u32, String> {
    if let Some(number) = name_number(ScheduleField::DayOfWeek, token) {
        return Ok(number);
    }
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{token}` is not a weekday: expected 0-7 (0 and 7 are Sunday) or SUN-SAT"));
    }
    match token.parse::<u32>() {
        Ok(day @ 0..=7) => Ok(day),
        _ => Err(format!("`{token}` is out of range: weekdays run 0-7 (0 and 7 are Sunday)")),
    }
}

/// The Vixie weekdays one plain list item selects: `*`, `a`, `a-b`, each with an optional
/// `/step` (`a/step` runs to 7, as `a-7/step`).
fn weekday_item(item: &str) -> Result<Vec<u32>, String> {
    let (base, step) = match item.split_once('/') {
        Some((base, step_text)) => {
            let step = match step_text.parse::<usize>() {
                Ok(step) if step > 0 && step_text_is_plain(step_text) => step,
                _ => return Err(format!("`{item}`: the step must be a positive number")),
            };
            (base, Some(step))
        }
        None => (item, None),
    };
    let (low, high) = if base == "*" {
        (0, 7)
    } else if let Some((a, b)) = base.split_once('-') {
        let (a, b) = (weekday_value(a)?, weekday_value(b)?);
        if a > b {
            return Err(format!("`{item}`: the range runs backwards"));
        }
        (a, b)
    } else {
        let day = weekday_value(base)?;
        (day, if step.is_some() { 7 } else { day })
    };
    Ok((low..=high).step_by(step.unwrap_or(1)).collect())
}

/// With both day fields required, a day-of-month that no selected month has never fires:
/// refused like Vixie's parser does (`0 0 30 2 *`).
fn refuse_impossible_day(written: &str, branches: &[Branch]) -> Result<(), ScheduleError> {
    let Some(branch) = branches.first() else { return Ok(()) };
    let Some(first_day) = branch.schedule.days_of_month().iter().next() else { return Ok(()) };
    let longest = branch
        .schedule
        .months()
        .iter()
        .filter_map(|month| NaiveDate::from_ymd_opt(2024, month, 1))
        .map(|date| u32::from(date.num_days_in_month()))
        .max()
        .unwrap_or(31);
    if first_day > longest {
        return Err(ScheduleError::invalid(
            ScheduleField::DayOfMonth,
            written,
            format!("no month the month field selects has a day {first_day}, so it would never run"),
        ));
    }
    Ok(())
}

/// How a job's next fire reads for a person (`/cron`, `ductor status`): the local time in its
/// zone (`Fri 05 Dec 09:00 CET`), `invalid schedule`, or `none` when nothing matches any more.
pub fn next_fire_label(expression: &str, zone: Tz, now: DateTime<Utc>) -> String {
    match CronSchedule::parse(expression) {
        Err(_) => "invalid schedule".to_owned(),
        Ok(schedule) => match schedule.next_fire(now, zone) {
            Some(next) => next.with_timezone(&zone).format("%a %d %b %H:%M %Z").to_string(),
            None => "none".to_owned(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Weekday;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn schedule(expression: &str) -> CronSchedule {
        CronSchedule::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    /// The next `count` fire instants after `after`, each from the previous one.
    fn fires(expression: &str, zone: Tz, after: &str, count: usize) -> Vec<String> {
        let schedule = schedule(expression);
        let mut at = utc(after);
        let mut out = Vec::new();
        for _ in 0..count {
            at = schedule.next_fire(at, zone).unwrap();
            out.push(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        out
    }

    /// Local dates of the next `count` fires.
    fn fire_dates(expression: &str, after: &str, count: usize) -> Vec<NaiveDate> {
        let schedule = schedule(expression);
        let mut at = utc(after);
        (0..count)
            .map(|_| {
                at = schedule.next_fire(at, Tz::UTC).unwrap();
                at.date_naive()
            })
            .collect()
    }

    /// Every date of 2025 from `from` on that `keep` accepts, the first `count`.
    fn dates_where(count: usize, keep: impl Fn(NaiveDate) -> bool) -> Vec<NaiveDate> {
        let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        start.iter_days().filter(|d| keep(*d)).take(count).collect()
    }

    #[test]
    fn nine_in_tokyo_is_midnight_utc() {
        // Ops spec §7.11 item 2.
        assert_eq!(
            fires("0 9 * * *", Tz::Asia__Tokyo, "2025-06-01T12:00:00Z", 2),
            ["2025-06-02T00:00:00Z", "2025-06-03T00:00:00Z"]
        );
    }

    #[test]
    fn the_zone_the_caller_resolves_decides_the_instant() {
        // Ops spec §7.11 item 3: the job's own zone overrides user_timezone (the resolver picks,
        // the schedule follows).
        use crate::core::zone::{configured_zone_name, resolve_zone};
        let (job_zone, _) = resolve_zone(configured_zone_name(Some("Europe/Berlin"), "Asia/Tokyo"), None, None);
        let (user_zone, _) = resolve_zone(configured_zone_name(None, "Asia/Tokyo"), None, None);
        let nine = schedule("0 9 * * *");
        let after = utc("2025-01-10T12:00:00Z");
        assert_eq!(nine.next_fire(after, job_zone), Some(utc("2025-01-11T08:00:00Z")));
        assert_eq!(nine.next_fire(after, user_zone), Some(utc("2025-01-11T00:00:00Z")));
    }

    #[test]
    fn day_of_month_and_day_of_week_or_when_both_are_restricted() {
        // Ops spec §7.11 item 13: `0 0 13 * 5` fires on the 13th and on Fridays.
        let expected = dates_where(40, |d| d.day() == 13 || d.weekday() == Weekday::Fri);
        assert_eq!(fire_dates("0 0 13 * 5", "2024-12-31T23:00:00Z", 40), expected);
        assert_eq!(fire_dates("0 0 13 * FRI", "2024-12-31T23:00:00Z", 40), expected);
        let expected = dates_where(40, |d| d.day() <= 7 || d.weekday() == Weekday::Mon);
        assert_eq!(fire_dates("0 12 1-7 * MON", "2024-12-31T23:00:00Z", 40), expected);
    }

    #[test]
    fn a_day_field_starting_with_a_star_makes_them_and() {
        let expected = dates_where(12, |d| d.day() % 2 == 1 && d.weekday() == Weekday::Mon);
        assert_eq!(fire_dates("0 0 */2 * 1", "2024-12-31T23:00:00Z", 12), expected);
        let expected = dates_where(12, |d| d.day() == 1 && d.weekday().num_days_from_sunday() % 2 == 0);
        assert_eq!(fire_dates("0 0 1 * */2", "2024-12-31T23:00:00Z", 12), expected);
        let expected = dates_where(30, |d| d.weekday() == Weekday::Wed);
        assert_eq!(fire_dates("0 0 * * 3", "2024-12-31T23:00:00Z", 30), expected);
        // A name with a W in it is a weekday, not the nearest-weekday token.
        assert_eq!(fire_dates("0 0 * * wed", "2024-12-31T23:00:00Z", 30), expected);
        assert_eq!(fire_dates("0 0 * * WED-WED", "2024-12-31T23:00:00Z", 30), expected);
    }

    #[test]
    fn weekdays_0_and_7_are_sunday_and_names_mix_with_numbers() {
        let sundays = dates_where(10, |d| d.weekday() == Weekday::Sun);
        for expression in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * SUN", "0 0 * * 0-7/7", "@weekly"] {
            assert_eq!(fire_dates(expression, "2024-12-31T23:00:00Z", 10), sundays, "{expression}");
        }
        let weekend = dates_where(15, |d| matches!(d.weekday(), Weekday::Fri | Weekday::Sat | Weekday::Sun));
        assert_eq!(fire_dates("0 0 * * 5-7", "2024-12-31T23:00:00Z", 15), weekend);
        assert_eq!(fire_dates("0 0 * * FRI-7", "2024-12-31T23:00:00Z", 15), weekend);
        let workdays = dates_where(15, |d| d.weekday().num_days_from_monday() < 5);
        assert_eq!(fire_dates("0 0 * * MON-5", "2024-12-31T23:00:00Z", 15), workdays);
        assert_eq!(fire_dates("0 0 * * mon-fri", "2024-12-31T23:00:00Z", 15), workdays);
        // `1/2` runs to 7, so Sunday (7) is in it: Mon, Wed, Fri, Sun.
        let odd = dates_where(12, |d| matches!(d.weekday(), Weekday::Mon | Weekday::Wed | Weekday::Fri | Weekday::Sun));
        assert_eq!(fire_dates("0 0 * * 1/2", "2024-12-31T23:00:00Z", 12), odd);
        assert_eq!(fire_dates("0 0 * * 1-7/2", "2024-12-31T23:00:00Z", 12), odd);
    }

    #[test]
    fn last_and_nth_weekday_tokens() {
        let last_day = dates_where(12, |d| d.day() == u32::from(d.num_days_in_month()));
        assert_eq!(fire_dates("0 0 L * *", "2024-12-31T23:00:00Z", 12), last_day);
        let last_friday =
            dates_where(12, |d| d.weekday() == Weekday::Fri && d.day() + 7 > u32::from(d.num_days_in_month()));
        assert_eq!(fire_dates("0 0 * * 5L", "2024-12-31T23:00:00Z", 12), last_friday);
        let second_monday = dates_where(12, |d| d.weekday() == Weekday::Mon && (8..=14).contains(&d.day()));
        assert_eq!(fire_dates("0 0 * * MON#2", "2024-12-31T23:00:00Z", 12), second_monday);
        // OR with a special token, and a list of them.
        let expected = dates_where(20, |d| d.day() == 15 || (d.weekday() == Weekday::Mon && d.day() <= 7));
        assert_eq!(fire_dates("0 0 15 * MON#1", "2024-12-31T23:00:00Z", 20), expected);
        let expected = dates_where(20, |d| {
            d.day() == 1
                || d.day() == u32::from(d.num_days_in_month())
                || (d.weekday() == Weekday::Tue && d.day() > 21 && d.day() <= 28)
        });
        assert_eq!(fire_dates("0 0 1,L * TUE#4", "2024-12-31T23:00:00Z", 20), expected);
        // L in February, leap and not.
        assert_eq!(
            fires("0 0 L 2 *", Tz::UTC, "2024-01-01T00:00:00Z", 2),
            ["2024-02-29T00:00:00Z", "2025-02-28T00:00:00Z"]
        );
    }

    #[test]
    fn steps_ranges_lists_and_long_steps() {
        assert_eq!(
            fires("5/15 * * * *", Tz::UTC, "2025-01-01T00:00:00Z", 5),
            [
                "2025-01-01T00:05:00Z",
                "2025-01-01T00:20:00Z",
                "2025-01-01T00:35:00Z",
                "2025-01-01T00:50:00Z",
                "2025-01-01T01:05:00Z"
            ]
        );
        assert_eq!(
            fires("1-30/10 9,17 * * *", Tz::UTC, "2025-01-01T00:00:00Z", 4),
            ["2025-01-01T09:01:00Z", "2025-01-01T09:11:00Z", "2025-01-01T09:21:00Z", "2025-01-01T17:01:00Z"]
        );
        // A step longer than the field selects only the start, as in Vixie cron.
        assert_eq!(
            fires("*/60 * * * *", Tz::UTC, "2025-01-01T00:00:00Z", 2),
            ["2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z"]
        );
        assert_eq!(
            fires("0 */24 * * *", Tz::UTC, "2025-01-01T00:00:00Z", 2),
            ["2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"]
        );
        assert_eq!(
            fires("0-59/60 0 * * *", Tz::UTC, "2025-01-01T00:00:00Z", 2),
            ["2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"]
        );
        assert_eq!(
            fires("10-40/99 0 * * *", Tz::UTC, "2025-01-01T00:00:00Z", 2),
            ["2025-01-01T00:10:00Z", "2025-01-02T00:10:00Z"]
        );
        assert_eq!(
            fires("0 0 1 jan-dec/6 *", Tz::UTC, "2025-01-01T00:00:00Z", 2),
            ["2025-07-01T00:00:00Z", "2026-01-01T00:00:00Z"]
        );
    }

    #[test]
    fn macros_and_the_seconds_field() {
        let after = "2025-05-14T10:20:30Z";
        for (name, same_as) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@HOURLY", "0 * * * *"),
        ] {
            assert_eq!(
                fires(name, Tz::Europe__Berlin, after, 3),
                fires(same_as, Tz::Europe__Berlin, after, 3),
                "{name}"
            );
        }
        assert_eq!(fires("@hourly", Tz::UTC, after, 1), ["2025-05-14T11:00:00Z"]);
        assert_eq!(
            fires("30 */10 * * * *", Tz::UTC, after, 3),
            ["2025-05-14T10:30:30Z", "2025-05-14T10:40:30Z", "2025-05-14T10:50:30Z"]
        );
        // Strictly after, also below the second.
        let every_second = schedule("* * * * * *");
        assert_eq!(every_second.next_fire(utc("2025-05-14T10:20:30.5Z"), Tz::UTC), Some(utc("2025-05-14T10:20:31Z")));
        assert_eq!(
            schedule("* * * * *").next_fire(utc("2025-05-14T10:20:00Z"), Tz::UTC),
            Some(utc("2025-05-14T10:21:00Z"))
        );
    }

    #[test]
    fn spring_forward_gaps_take_the_offset_before_the_transition() {
        // New York, 2025-03-09 02:00 EST → 03:00 EDT: 02:30 does not exist, it is 03:30 EDT.
        let ny = Tz::America__New_York;
        assert_eq!(
            fires("30 2 * * *", ny, "2025-03-09T06:00:00Z", 2),
            ["2025-03-09T07:30:00Z", "2025-03-10T06:30:00Z"]
        );
        // Every 15 minutes: 01:45 EST, then 02:00 (→ 03:00 EDT), and 02:15–02:45 collapse into
        // the hour after; the next instant after 03:00 EDT is 03:15 EDT.
        assert_eq!(
            fires("*/15 * * * *", ny, "2025-03-09T06:40:00Z", 3),
            ["2025-03-09T06:45:00Z", "2025-03-09T07:00:00Z", "2025-03-09T07:15:00Z"]
        );
        // Berlin, 2025-03-30 02:00 CET → 03:00 CEST: 02:30 is 03:30 CEST = 01:30 UTC.
        assert_eq!(fires("30 2 * * *", Tz::Europe__Berlin, "2025-03-29T23:00:00Z", 1), ["2025-03-30T01:30:00Z"]);
    }

    #[test]
    fn fall_back_times_fire_once_at_their_first_occurrence() {
        // New York, 2025-11-02 02:00 EDT → 01:00 EST: 01:30 happens twice; it fires at 01:30 EDT.
        let ny = Tz::America__New_York;
        assert_eq!(
            fires("30 1 * * *", ny, "2025-11-02T04:00:00Z", 2),
            ["2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"]
        );
        // From inside the repeated hour (01:10 EST), the slots of that hour already passed once.
        assert_eq!(
            fires("*/20 * * * *", ny, "2025-11-02T06:10:00Z", 2),
            ["2025-11-02T07:00:00Z", "2025-11-02T07:20:00Z"]
        );
        // Berlin, 2025-10-26 03:00 CEST → 02:00 CET: 02:30 is 02:30 CEST = 00:30 UTC.
        assert_eq!(
            fires("30 2 * * *", Tz::Europe__Berlin, "2025-10-25T23:00:00Z", 2),
            ["2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"]
        );
    }

    #[test]
    fn local_times_become_instants_with_fold_0() {
        let at = |y, m, d, h, min| NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap();
        let ny = Tz::America__New_York;
        assert_eq!(local_to_instant(ny, at(2025, 3, 9, 2, 30)), Some(utc("2025-03-09T07:30:00Z")));
        assert_eq!(local_to_instant(ny, at(2025, 11, 2, 1, 30)), Some(utc("2025-11-02T05:30:00Z")));
        assert_eq!(local_to_instant(ny, at(2025, 7, 1, 12, 0)), Some(utc("2025-07-01T16:00:00Z")));
        // Samoa skipped all of 2011-12-30 (-10 → +14): read with the offset before, -10.
        assert_eq!(local_to_instant(Tz::Pacific__Apia, at(2011, 12, 30, 12, 0)), Some(utc("2011-12-30T22:00:00Z")));
    }

    #[test]
    fn the_wall_clock_guard() {
        let ny = Tz::America__New_York;
        let nine = schedule("0 9 * * *");
        // Woken on time, or a little late: fire.
        assert_eq!(nine.wake_check(utc("2025-06-02T13:00:00Z"), ny), WakeCheck::FireNow);
        assert_eq!(nine.wake_check(utc("2025-06-02T13:00:40Z"), ny), WakeCheck::FireNow);
        // Woken within the 30 s tolerance before the slot: fire.
        assert_eq!(nine.wake_check(utc("2025-06-02T12:59:31Z"), ny), WakeCheck::FireNow);
        // Woken ten minutes early (the monotonic clock ran ahead): sleep the rest.
        assert_eq!(nine.wake_check(utc("2025-06-02T12:50:00Z"), ny), WakeCheck::SleepMore(Duration::minutes(10)));
        // The spring-forward slot: the timer for 02:30 wakes at 03:30 EDT and sleeps to tomorrow.
        let half_past_two = schedule("30 2 * * *");
        assert_eq!(half_past_two.next_fire(utc("2025-03-09T06:00:00Z"), ny), Some(utc("2025-03-09T07:30:00Z")));
        assert_eq!(
            half_past_two.wake_check(utc("2025-03-09T07:30:00Z"), ny),
            WakeCheck::SleepMore(utc("2025-03-10T06:30:00Z") - utc("2025-03-09T07:30:00Z"))
        );
        assert_eq!((WAKE_TOLERANCE.num_seconds(), MAX_WAKE_CHECKS), (30, 5));
    }

    #[test]
    fn invalid_expressions_name_the_field() {
        // Ops spec §7.11 item 14.
        let error = CronSchedule::parse("61 * * * *").unwrap_err();
        assert!(
            matches!(&error, ScheduleError::InvalidField { field: ScheduleField::Minute, value, .. } if value == "61")
        );
        assert!(error.to_string().starts_with("minute field `61` is invalid: expected values 0-59"), "{error}");
        let field_of = |expression: &str| match CronSchedule::parse(expression) {
            Err(ScheduleError::InvalidField { field, .. } | ScheduleError::Unsupported { field, .. }) => Some(field),
            other => panic!("{expression}: {other:?}"),
        };
        assert_eq!(field_of("0 24 * * *"), Some(ScheduleField::Hour));
        assert_eq!(field_of("0 0 0 * *"), Some(ScheduleField::DayOfMonth));
        assert_eq!(field_of("0 0 32 * *"), Some(ScheduleField::DayOfMonth));
        assert_eq!(field_of("0 0 * 13 *"), Some(ScheduleField::Month));
        assert_eq!(field_of("0 0 * JANUARY *"), Some(ScheduleField::Month));
        assert_eq!(field_of("0 0 * * 8"), Some(ScheduleField::DayOfWeek));
        assert_eq!(field_of("0 0 * * FUNDAY"), Some(ScheduleField::DayOfWeek));
        assert_eq!(field_of("60 0 0 * * *"), Some(ScheduleField::Second));
        assert_eq!(field_of("5-1 * * * *"), Some(ScheduleField::Minute));
        assert_eq!(field_of("*/0 * * * *"), Some(ScheduleField::Minute));
        assert_eq!(field_of("1,,2 * * * *"), Some(ScheduleField::Minute));
        assert_eq!(field_of("0 0 * * 5-1"), Some(ScheduleField::DayOfWeek));
        assert_eq!(field_of("0 0 * * 1#6"), Some(ScheduleField::DayOfWeek));
        assert_eq!(field_of("0 0 * * FRIL"), Some(ScheduleField::DayOfWeek));
        assert_eq!(field_of("0 0 L-2 * *"), Some(ScheduleField::DayOfMonth));
        // Never fires when both day fields must match.
        assert_eq!(field_of("0 0 30 2 *"), Some(ScheduleField::DayOfMonth));
        assert!(CronSchedule::parse("0 0 30 2 MON").is_ok(), "ORed with Mondays it fires");
        assert!(CronSchedule::parse("0 0 29 2 *").is_ok());
    }

    #[test]
    fn other_dialects_and_shapes_are_refused_clearly() {
        let error = CronSchedule::parse("0 0 15W * *").unwrap_err();
        assert_eq!(
            error.to_string(),
            "day-of-month field `15W`: `15W` is not supported (the nearest weekday to a day of the month)"
        );
        assert!(
            matches!(CronSchedule::parse("0 0 LW * *"), Err(ScheduleError::Unsupported { token, .. }) if token == "LW")
        );
        assert!(
            matches!(CronSchedule::parse("0 0 ? * MON"), Err(ScheduleError::Unsupported { token, .. }) if token == "?")
        );
        assert_eq!(CronSchedule::parse("   "), Err(ScheduleError::Empty));
        assert_eq!(
            CronSchedule::parse("* * * *"),
            Err(ScheduleError::FieldCount { expression: "* * * *".to_owned(), count: 4 })
        );
        assert!(matches!(CronSchedule::parse("0 0 0 * * * 2030"), Err(ScheduleError::FieldCount { count: 7, .. })));
        assert_eq!(CronSchedule::parse("@reboot"), Err(ScheduleError::UnknownMacro("@reboot".to_owned())));
        assert!(CronSchedule::parse("@reboot").unwrap_err().to_string().contains("@daily"));
    }

    #[test]
    fn the_expression_is_kept_as_written() {
        let parsed: CronSchedule = "  0 9 * * mon-fri ".parse().unwrap();
        assert_eq!(parsed.expression(), "0 9 * * mon-fri");
        assert_eq!(parsed.to_string(), "0 9 * * mon-fri");
    }

    #[test]
    fn the_next_fire_reads_in_the_jobs_zone() {
        let now: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        assert_eq!(next_fire_label("0 9 * * 1-5", chrono_tz::Europe::Berlin, now), "Mon 07 Dec 09:00 CET");
        assert_eq!(next_fire_label("61 * * * *", chrono_tz::UTC, now), "invalid schedule");
    }
}

//! `sessions.json`: one foreground session per SessionKey with per-provider buckets (core spec
//! §2.1). Read leniently: a bad entry is skipped (with a warning), bad numbers become 0, legacy
//! flat fields become the bucket of the session's provider, legacy keys are re-keyed, unknown
//! fields are dropped with a warning. Only a file whose top level is not an object is corrupt.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::core::session_key::SessionKey;
use crate::core::state::timestamp_now;

/// One provider's slot in a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderBucket {
    /// The provider CLI's session id.
    pub session_id: String,
    /// Messages in this session.
    pub message_count: u64,
    /// Cost so far.
    pub total_cost_usd: f64,
    /// Input + output tokens so far (cumulative).
    pub total_tokens: u64,
}

/// One chat's session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// Its key.
    pub key: SessionKey,
    /// Forum topic name, if known.
    pub topic_name: Option<String>,
    /// Current provider.
    pub provider: String,
    /// Current model.
    pub model: String,
    /// ISO timestamp.
    pub created_at: String,
    /// ISO timestamp.
    pub last_active: String,
    /// Buckets per provider, in file order.
    pub provider_sessions: Vec<(String, ProviderBucket)>,
}

/// When a stored session stops being continued (core spec §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessRules {
    /// `max_session_messages`: a bucket with this many messages is used up.
    pub max_session_messages: Option<i64>,
    /// `idle_timeout_minutes` (0 = never).
    pub idle_timeout_minutes: i64,
    /// `daily_reset_hour` in the user's zone, when `daily_reset_enabled`.
    pub daily_reset: Option<(u32, chrono::FixedOffset)>,
}

impl SessionRecord {
    /// Whether the session may be continued with `provider`'s bucket at `now`.
    pub fn is_fresh(&self, provider: &str, rules: &FreshnessRules, now: chrono::DateTime<chrono::Utc>) -> bool {
        let Some(last_active) = crate::core::state::parse_timestamp(&self.last_active) else { return false };
        if let (Some(max), Some(bucket)) = (rules.max_session_messages, self.bucket(provider))
            && i64::try_from(bucket.message_count).unwrap_or(i64::MAX) >= max
        {
            return false;
        }
        if rules.idle_timeout_minutes > 0 && now - last_active >= chrono::Duration::minutes(rules.idle_timeout_minutes)
        {
            return false;
        }
        if let Some((hour, offset)) = rules.daily_reset {
            let local = now.with_timezone(&offset);
            let boundary_today = local.date_naive().and_hms_opt(hour.min(23), 0, 0);
            let boundary = boundary_today.and_then(|b| {
                let today = b.and_local_timezone(offset).single()?;
                Some(if local >= today { today } else { today - chrono::Duration::days(1) })
            });
            if boundary.is_some_and(|b| last_active < b) {
                return false;
            }
        }
        true
    }

    /// The bucket of a provider.
    pub fn bucket(&self, provider: &str) -> Option<&ProviderBucket> {
        self.provider_sessions.iter().find(|(p, _)| p == provider).map(|(_, b)| b)
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sessions {
    /// Sessions in file order.
    pub records: Vec<SessionRecord>,
    /// What was skipped or dropped while reading (the store logs these).
    pub warnings: Vec<String>,
}

impl Sessions {
    /// The session of a key.
    pub fn get(&self, key: &SessionKey) -> Option<&SessionRecord> {
        self.records.iter().find(|r| &r.key == key)
    }

    /// Reads the file's JSON; `Err` only when the top level is not an object.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(map) = value else { return Err("sessions.json must be a JSON object".to_owned()) };
        let mut sessions = Self::default();
        for (stored_key, entry) in map {
            let key = match SessionKey::parse(&stored_key) {
                Ok(key) => key,
                Err(e) => {
                    sessions.warnings.push(format!("skipped session {stored_key:?}: {e}"));
                    continue;
                }
            };
            let Value::Object(fields) = entry else {
                sessions.warnings.push(format!("skipped session {stored_key:?}: not an object"));
                continue;
            };
            let record = read_record(key, &fields, &mut sessions.warnings);
            sessions.records.retain(|r| r.key != record.key);
            sessions.records.push(record);
        }
        Ok(sessions)
    }

    /// The file's JSON, keyed by the canonical storage key, fields in the original's order.
    pub fn to_value(&self) -> Value {
        let map: Map<String, Value> = self
            .records
            .iter()
            .map(|r| {
                let buckets: Map<String, Value> = r
                    .provider_sessions
                    .iter()
                    .map(|(provider, b)| {
                        let bucket = json!({"session_id": b.session_id, "message_count": b.message_count,
                            "total_cost_usd": b.total_cost_usd, "total_tokens": b.total_tokens});
                        (provider.clone(), bucket)
                    })
                    .collect();
                let value = json!({
                    "transport": r.key.transport,
                    "chat_id": r.key.chat_id,
                    "topic_id": r.key.topic_id,
                    "topic_name": r.topic_name,
                    "provider": r.provider,
                    "model": r.model,
                    "created_at": r.created_at,
                    "last_active": r.last_active,
                    "provider_sessions": buckets,
                });
                (r.key.storage_key(), value)
            })
            .collect();
        Value::Object(map)
    }
}

const KNOWN: [&str; 13] = [
    "transport",
    "chat_id",
    "topic_id",
    "topic_name",
    "provider",
    "model",
    "created_at",
    "last_active",
    "provider_sessions",
    "session_id",
    "message_count",
    "total_cost_usd",
    "total_tokens",
];

fn read_record(key: SessionKey, fields: &Map<String, Value>, warnings: &mut Vec<String>) -> SessionRecord {
    let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_owned);
    for unknown in fields.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
        warnings.push(format!("session {key}: dropped unknown field {unknown:?}"));
    }
    let provider = text("provider").unwrap_or_else(|| "claude".to_owned());
    let provider_sessions = match fields.get("provider_sessions") {
        Some(Value::Object(buckets)) => buckets.iter().map(|(p, b)| (p.clone(), read_bucket(b.as_object()))).collect(),
        _ if fields.contains_key("session_id") || fields.contains_key("message_count") => {
            vec![(provider.clone(), read_bucket(Some(fields)))]
        }
        _ => Vec::new(),
    };
    let now = timestamp_now();
    SessionRecord {
        key,
        topic_name: text("topic_name"),
        provider,
        model: text("model").unwrap_or_else(|| "opus".to_owned()),
        created_at: text("created_at").unwrap_or_else(|| now.clone()),
        last_active: text("last_active").unwrap_or(now),
        provider_sessions,
    }
}

fn read_bucket(fields: Option<&Map<String, Value>>) -> ProviderBucket {
    let Some(fields) = fields else { return ProviderBucket::default() };
    let count =
        |k: &str| fields.get(k).and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64))).unwrap_or(0);
    ProviderBucket {
        session_id: fields.get("session_id").and_then(Value::as_str).unwrap_or("").to_owned(),
        message_count: count("message_count"),
        total_cost_usd: fields.get("total_cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
        total_tokens: count("total_tokens"),
    }
}

impl Serialize for Sessions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Sessions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_flat_fields_and_keys_are_migrated() {
        let value = json!({
            "123": {"provider": "codex", "session_id": "abc", "message_count": "x", "total_cost_usd": 0.5, "mood": "happy"},
            "-100:7": {"provider_sessions": {"claude": {"session_id": "s", "message_count": 3}}},
            "a:b:c:d": {},
            "tg:5": 7
        });
        let sessions = Sessions::from_value(value).unwrap();
        assert_eq!(sessions.records.len(), 2);
        let legacy = sessions.get(&SessionKey::new("tg", 123i64, None)).unwrap();
        let bucket = legacy.bucket("codex").unwrap();
        assert_eq!((bucket.session_id.as_str(), bucket.message_count, bucket.total_cost_usd), ("abc", 0, 0.5));
        assert_eq!(legacy.model, "opus");
        let topic = sessions.get(&SessionKey::new("tg", -100i64, Some(7))).unwrap();
        assert_eq!(topic.provider, "claude");
        assert_eq!(topic.bucket("claude").unwrap().message_count, 3);
        assert_eq!(sessions.warnings.len(), 3, "{:?}", sessions.warnings);
        let written = sessions.to_value();
        assert!(written.get("tg:123").is_some() && written.get("tg:-100:7").is_some(), "re-keyed");
        assert!(written["tg:123"].get("mood").is_none(), "unknown field dropped");
    }

    fn record(last_active: &str, messages: u64) -> SessionRecord {
        SessionRecord {
            key: SessionKey::new("tg", 1i64, None),
            topic_name: None,
            provider: "claude".into(),
            model: "opus".into(),
            created_at: last_active.into(),
            last_active: last_active.into(),
            provider_sessions: vec![(
                "claude".into(),
                ProviderBucket { session_id: "s".into(), message_count: messages, ..ProviderBucket::default() },
            )],
        }
    }

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        crate::core::state::parse_timestamp(text).unwrap()
    }

    #[test]
    fn freshness_rules() {
        let rules = FreshnessRules { max_session_messages: None, idle_timeout_minutes: 1440, daily_reset: None };
        let now = at("2026-11-24T12:00:00+00:00");
        assert!(record("2026-11-24T11:00:00+00:00", 1).is_fresh("claude", &rules, now));
        assert!(!record("2026-11-23T11:00:00+00:00", 1).is_fresh("claude", &rules, now), "25 h idle");
        assert!(!record("garbage", 1).is_fresh("claude", &rules, now));
        let max3 = FreshnessRules { max_session_messages: Some(3), ..rules };
        assert!(!record("2026-11-24T11:00:00+00:00", 3).is_fresh("claude", &max3, now));
        assert!(record("2026-11-24T11:00:00+00:00", 3).is_fresh("codex", &max3, now), "other bucket");
        let berlin = chrono::FixedOffset::east_opt(3600).unwrap();
        let daily =
            FreshnessRules { max_session_messages: None, idle_timeout_minutes: 0, daily_reset: Some((4, berlin)) };
        // 04:00 Berlin = 03:00 UTC.
        assert!(!record("2026-11-24T02:59:00+00:00", 1).is_fresh("claude", &daily, now), "before today's reset");
        assert!(record("2026-11-24T03:01:00+00:00", 1).is_fresh("claude", &daily, now));
        let early = at("2026-11-24T02:00:00+00:00");
        assert!(
            record("2026-11-23T03:30:00+00:00", 1).is_fresh("claude", &daily, early),
            "yesterday's boundary applies before 04:00"
        );
        assert!(!record("2026-11-23T02:30:00+00:00", 1).is_fresh("claude", &daily, early));
    }

    #[test]
    fn top_level_must_be_an_object() {
        assert!(Sessions::from_value(json!([])).is_err());
        assert!(serde_json::from_str::<Sessions>("[]").is_err());
    }
}

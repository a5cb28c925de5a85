//! Lax scalar reading, as the original's validation accepts them (ops spec §2.6): numeric
//! strings for numbers, whole floats for integers, integers for floats, and `"true"`/`"false"`
//! (also `yes/no`, `on/off`, `1/0`) for booleans. Each reader names what it expected.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A short description of a JSON value for error messages.
pub fn describe(value: &Value) -> String {
    let text = value.to_string();
    let short: String = text.chars().take(40).collect();
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    if matches!(value, Value::Null) { kind.to_owned() } else { format!("{kind} ({short})") }
}

fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
        }
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn read<'de, D, T>(d: D, convert: fn(&Value) -> Option<T>, expected: &str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(d)?;
    convert(&value).ok_or_else(|| D::Error::custom(format!("expected {expected}, found {}", describe(&value))))
}

fn read_opt<'de, D, T>(d: D, convert: fn(&Value) -> Option<T>, expected: &str) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(d)?;
    if value.is_null() {
        return Ok(None);
    }
    convert(&value)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected {expected} or null, found {}", describe(&value))))
}

/// An integer.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    read(d, as_int, "an integer")
}

/// An integer or null.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    read_opt(d, as_int, "an integer")
}

/// A TCP port (1–65535).
pub fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    read(d, |v| as_int(v).and_then(|n| u16::try_from(n).ok()).filter(|p| *p > 0), "a port number (1-65535)")
}

/// A number.
pub fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    read(d, as_float, "a number")
}

/// A number or null.
pub fn opt_float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    read_opt(d, as_float, "a number")
}

/// A boolean.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    read(d, as_bool, "true or false")
}

/// A list of integers.
pub fn int_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    read(d, |v| v.as_array()?.iter().map(as_int).collect(), "a list of integers")
}

/// A list of numbers.
pub fn float_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    read(d, |v| v.as_array()?.iter().map(as_float).collect(), "a list of numbers")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lax_scalars() {
        assert_eq!(as_int(&json!("30")), Some(30));
        assert_eq!(as_int(&json!(30.0)), Some(30));
        assert_eq!(as_int(&json!(30.5)), None);
        assert_eq!(as_float(&json!(900)), Some(900.0));
        assert_eq!(as_float(&json!(" 1.5 ")), Some(1.5));
        assert_eq!(as_bool(&json!("true")), Some(true));
        assert_eq!(as_bool(&json!("False")), Some(false));
        assert_eq!(as_bool(&json!("maybe")), None);
        assert_eq!(as_bool(&json!({})), None);
    }
}

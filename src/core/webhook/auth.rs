//! Webhook authentication (ops spec §8.4) and the hook table it reads: each hook with its
//! signature regexes compiled once when `webhooks.json` is loaded. Regexes are Python `re`
//! syntax; `fancy-regex` runs them, look-around and backreferences included. A hook whose regex
//! does not compile (or has no group 1) is kept, reported, and refuses every request (401).
//! Every secret is compared in constant time (`orion::util::secure_cmp`).

use base64::Engine;
use fancy_regex::Regex;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};

use super::RequestHeaders;
use crate::core::state::webhooks::{Webhook, Webhooks};

/// A hook whose regex cannot be used, with what to tell the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhook '{hook}': {field} {pattern:?} cannot be used ({reason}); its requests are refused with 401")]
pub struct HookLoadError {
    /// The hook's id.
    pub hook: String,
    /// The field (`hmac_sig_regex` or `hmac_payload_prefix_regex`).
    pub field: &'static str,
    /// The pattern as written.
    pub pattern: String,
    /// Why it cannot be used.
    pub reason: String,
}

/// Why a request did not authenticate (for the debug log; the answer is always 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Bearer: neither the hook nor the server has a token.
    NoTokenConfigured,
    /// Bearer: no `Authorization: Bearer …` header.
    MissingBearer,
    /// Bearer: the token differs.
    WrongToken,
    /// HMAC: the hook has no secret.
    NoSecretConfigured,
    /// HMAC: the signature header is missing or empty.
    MissingSignatureHeader,
    /// HMAC: `hmac_sig_regex` found no (or an empty) signature.
    NoSignatureFound,
    /// HMAC: the signature differs.
    WrongSignature,
    /// HMAC: a regex of the hook could not be compiled (reported when the table was loaded).
    UnusableRegex,
}

/// A hook ready to check requests: the definition and its compiled regexes.
#[derive(Debug, Clone)]
pub struct CompiledHook {
    /// The definition from `webhooks.json`.
    pub hook: Webhook,
    sig_regex: Option<Regex>,
    payload_prefix_regex: Option<Regex>,
    unusable: bool,
}

impl CompiledHook {
    /// Compiles the hook's regexes (only an `hmac` hook uses them); an unusable regex is
    /// returned as an error beside the hook, which then refuses every request.
    pub fn compile(hook: Webhook) -> (Self, Vec<HookLoadError>) {
        let mut errors = Vec::new();
        let mut compiled = Self { sig_regex: None, payload_prefix_regex: None, unusable: false, hook };
        if compiled.hook.auth_mode == "hmac" {
            let hook = &compiled.hook;
            compiled.sig_regex = compile_field(hook, "hmac_sig_regex", &hook.hmac_sig_regex, &mut errors);
            compiled.payload_prefix_regex =
                compile_field(hook, "hmac_payload_prefix_regex", &hook.hmac_payload_prefix_regex, &mut errors);
            compiled.unusable = !errors.is_empty();
        }
        (compiled, errors)
    }
}

fn compile_field(hook: &Webhook, field: &'static str, pattern: &str, errors: &mut Vec<HookLoadError>) -> Option<Regex> {
    if pattern.is_empty() {
        return None;
    }
    let error = |reason: String| HookLoadError { hook: hook.id.clone(), field, pattern: pattern.to_owned(), reason };
    match Regex::new(pattern) {
        Ok(regex) if regex.captures_len() >= 2 => Some(regex),
        Ok(_) => {
            errors.push(error("it has no capture group 1, which holds the value".to_owned()));
            None
        }
        Err(e) => {
            errors.push(error(e.to_string()));
            None
        }
    }
}

/// The hooks the server answers for, by id (the first of a repeated id counts).
#[derive(Debug, Clone, Default)]
pub struct HookTable {
    hooks: Vec<CompiledHook>,
}

impl HookTable {
    /// Compiles every hook of `webhooks.json`; the errors name each hook whose regex cannot be
    /// used (those hooks stay in the table and refuse their requests).
    pub fn compile(file: &Webhooks) -> (Self, Vec<HookLoadError>) {
        let mut errors = Vec::new();
        let hooks = file
            .hooks
            .iter()
            .map(|hook| {
                let (compiled, mut problems) = CompiledHook::compile(hook.clone());
                errors.append(&mut problems);
                compiled
            })
            .collect();
        (Self { hooks }, errors)
    }

    /// The hook with this id.
    pub fn get(&self, id: &str) -> Option<&CompiledHook> {
        self.hooks.iter().find(|h| h.hook.id == id)
    }

    /// How many hooks there are.
    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }
}

fn same_secret(given: &str, expected: &str) -> bool {
    orion::util::secure_cmp(given.as_bytes(), expected.as_bytes()).is_ok()
}

/// Checks a request against the hook's `auth_mode`: `hmac`, or bearer for anything else.
pub fn authenticate(
    hook: &CompiledHook,
    headers: &RequestHeaders,
    body: &[u8],
    global_token: &str,
) -> Result<(), AuthFailure> {
    if hook.hook.auth_mode == "hmac" {
        check_hmac(hook, headers, body)
    } else {
        check_bearer(&hook.hook, headers, global_token)
    }
}

/// Bearer: the hook's token, else the server's; the `Authorization` header must start with
/// exactly `Bearer ` and the rest must equal it.
fn check_bearer(hook: &Webhook, headers: &RequestHeaders, global_token: &str) -> Result<(), AuthFailure> {
    let expected = if hook.token.is_empty() { global_token } else { hook.token.as_str() };
    if expected.is_empty() {
        return Err(AuthFailure::NoTokenConfigured);
    }
    let given = headers
        .get("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(AuthFailure::MissingBearer)?;
    if same_secret(given, expected) { Ok(()) } else { Err(AuthFailure::WrongToken) }
}

/// The first search match's group 1, if non-empty.
fn group_one<'t>(regex: &Regex, text: &'t str) -> Option<&'t str> {
    let captures = regex.captures(text).ok().flatten()?;
    captures.get(1).map(|m| m.as_str()).filter(|g| !g.is_empty())
}

fn check_hmac(hook: &CompiledHook, headers: &RequestHeaders, body: &[u8]) -> Result<(), AuthFailure> {
    if hook.unusable {
        return Err(AuthFailure::UnusableRegex);
    }
    let def = &hook.hook;
    let value = headers.get(&def.hmac_header).unwrap_or_default();
    if value.is_empty() {
        return Err(AuthFailure::MissingSignatureHeader);
    }
    if def.hmac_secret.is_empty() {
        return Err(AuthFailure::NoSecretConfigured);
    }
    let signature = match &hook.sig_regex {
        Some(regex) => group_one(regex, value).ok_or(AuthFailure::NoSignatureFound)?,
        None if !def.hmac_sig_prefix.is_empty() => value.strip_prefix(def.hmac_sig_prefix.as_str()).unwrap_or(value),
        None => value,
    };
    let prefix = hook.payload_prefix_regex.as_ref().and_then(|regex| group_one(regex, value));
    let expected = expected_signature(def, prefix, body).ok_or(AuthFailure::WrongSignature)?;
    if same_secret(signature, &expected) { Ok(()) } else { Err(AuthFailure::WrongSignature) }
}

/// The signature an `hmac` hook expects for `body` (signed as `prefix + "." + body` when the
/// hook signs a prefix): the HMAC with its algorithm and secret, as lowercase hex or — when its
/// encoding is `base64` — standard base64. (`None` only if the MAC refused the key, which HMAC
/// never does.) `ductor webhook test` signs its request with it.
pub fn expected_signature(hook: &Webhook, prefix: Option<&str>, body: &[u8]) -> Option<String> {
    let digest = hmac_digest(&hook.hmac_algorithm, hook.hmac_secret.as_bytes(), prefix, body)?;
    Some(if hook.hmac_encoding.eq_ignore_ascii_case("base64") {
        base64::engine::general_purpose::STANDARD.encode(&digest)
    } else {
        lower_hex(&digest)
    })
}

/// HMAC of `prefix + "." + body` (or of the body alone) with SHA-1, SHA-512 or — for any other
/// name — SHA-256; the name is compared without regard to case. (`None` only if the MAC refused
/// the key, which HMAC never does.)
fn hmac_digest(algorithm: &str, key: &[u8], prefix: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    fn run<M: Mac + KeyInit>(key: &[u8], prefix: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
        let mut mac = <M as Mac>::new_from_slice(key).ok()?;
        if let Some(prefix) = prefix {
            mac.update(prefix.as_bytes());
            mac.update(b".");
        }
        mac.update(body);
        Some(mac.finalize().into_bytes().to_vec())
    }
    match algorithm.to_ascii_lowercase().as_str() {
        "sha1" => run::<Hmac<sha1::Sha1>>(key, prefix, body),
        "sha512" => run::<Hmac<sha2::Sha512>>(key, prefix, body),
        _ => run::<Hmac<sha2::Sha256>>(key, prefix, body),
    }
}

fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    /// Reference MACs of RFC 4231 / RFC 2202 test case 2 (key `Jefe`).
    const JEFE_BODY: &[u8] = b"what do ya want for nothing?";
    const JEFE_SHA256: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    const JEFE_SHA256_B64: &str = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=";
    const JEFE_SHA1: &str = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79";
    const JEFE_SHA512: &str = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737";

    fn hook(fields: serde_json::Value) -> Webhook {
        let mut base = json!({"id": "h", "title": "T", "mode": "wake", "prompt_template": "x"});
        base.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn compiled(fields: serde_json::Value) -> CompiledHook {
        let (hook, errors) = CompiledHook::compile(hook(fields));
        assert!(errors.is_empty(), "{errors:?}");
        hook
    }

    fn headers(pairs: &[(&str, &str)]) -> RequestHeaders {
        pairs.iter().map(|(n, v)| (*n, *v)).collect()
    }

    fn jefe(fields: serde_json::Value) -> CompiledHook {
        let mut all = json!({"auth_mode": "hmac", "hmac_secret": "Jefe", "hmac_header": "X-Sig"});
        all.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        compiled(all)
    }

    fn check(hook: &CompiledHook, pairs: &[(&str, &str)], body: &[u8]) -> Result<(), AuthFailure> {
        authenticate(hook, &headers(pairs), body, "global")
    }

    #[test]
    fn bearer_right_wrong_missing_and_exact_prefix() {
        let own = compiled(json!({"token": "own"}));
        assert_eq!(check(&own, &[("Authorization", "Bearer own")], b""), Ok(()));
        assert_eq!(check(&own, &[("authorization", "Bearer own")], b""), Ok(()), "header name in any case");
        assert_eq!(check(&own, &[("Authorization", "Bearer owN")], b""), Err(AuthFailure::WrongToken));
        assert_eq!(check(&own, &[("Authorization", "Bearer own ")], b""), Err(AuthFailure::WrongToken));
        assert_eq!(check(&own, &[("Authorization", "Bearer global")], b""), Err(AuthFailure::WrongToken));
        assert_eq!(check(&own, &[("Authorization", "bearer own")], b""), Err(AuthFailure::MissingBearer));
        assert_eq!(check(&own, &[("Authorization", "Bearerown")], b""), Err(AuthFailure::MissingBearer));
        assert_eq!(check(&own, &[("Authorization", "own")], b""), Err(AuthFailure::MissingBearer));
        assert_eq!(check(&own, &[], b""), Err(AuthFailure::MissingBearer));
    }

    #[test]
    fn bearer_falls_back_to_the_global_token_and_refuses_when_both_are_empty() {
        let shared = compiled(json!({"token": ""}));
        assert_eq!(check(&shared, &[("Authorization", "Bearer global")], b""), Ok(()));
        assert_eq!(check(&shared, &[("Authorization", "Bearer other")], b""), Err(AuthFailure::WrongToken));
        let result = authenticate(&shared, &headers(&[("Authorization", "Bearer ")]), b"", "");
        assert_eq!(result, Err(AuthFailure::NoTokenConfigured));
    }

    #[test]
    fn an_unknown_auth_mode_is_bearer() {
        let odd = compiled(json!({"auth_mode": "basic", "token": "t"}));
        assert_eq!(check(&odd, &[("Authorization", "Bearer t")], b""), Ok(()));
        assert_eq!(check(&odd, &[], b""), Err(AuthFailure::MissingBearer));
    }

    #[test]
    fn hmac_github_style_header() {
        let github = compiled(json!({
            "auth_mode": "hmac", "hmac_secret": "It's a Secret to Everybody", "hmac_header": "X-Hub-Signature-256",
        }));
        // The example of GitHub's documentation on validating deliveries.
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(check(&github, &[("x-hub-signature-256", good)], b"Hello, World!"), Ok(()));
        let flipped = good.replace("757107", "757108");
        assert_eq!(
            check(&github, &[("X-Hub-Signature-256", &flipped)], b"Hello, World!"),
            Err(AuthFailure::WrongSignature)
        );
        assert_eq!(
            check(&github, &[("X-Hub-Signature-256", good)], b"Hello, World?"),
            Err(AuthFailure::WrongSignature)
        );
        assert_eq!(check(&github, &[], b"Hello, World!"), Err(AuthFailure::MissingSignatureHeader));
        assert_eq!(
            check(&github, &[("X-Hub-Signature-256", "")], b"Hello, World!"),
            Err(AuthFailure::MissingSignatureHeader)
        );
    }

    #[test]
    fn hmac_sha256_sha1_sha512_hex() {
        let prefixless = json!({"hmac_sig_prefix": ""});
        let sha256 = jefe(prefixless.clone());
        assert_eq!(check(&sha256, &[("X-Sig", JEFE_SHA256)], JEFE_BODY), Ok(()));
        let mut sha1_fields = prefixless.clone();
        sha1_fields["hmac_algorithm"] = json!("sha1");
        let sha1 = jefe(sha1_fields);
        assert_eq!(check(&sha1, &[("X-Sig", JEFE_SHA1)], JEFE_BODY), Ok(()));
        assert_eq!(check(&sha1, &[("X-Sig", JEFE_SHA256)], JEFE_BODY), Err(AuthFailure::WrongSignature));
        let mut sha512_fields = prefixless;
        sha512_fields["hmac_algorithm"] = json!("sha512");
        let sha512 = jefe(sha512_fields);
        assert_eq!(check(&sha512, &[("X-Sig", JEFE_SHA512)], JEFE_BODY), Ok(()));
        assert_eq!(check(&sha512, &[("X-Sig", JEFE_SHA256)], JEFE_BODY), Err(AuthFailure::WrongSignature));
    }

    #[test]
    fn an_unknown_algorithm_is_sha256() {
        let hook = jefe(json!({"hmac_algorithm": "md5", "hmac_sig_prefix": ""}));
        assert_eq!(check(&hook, &[("X-Sig", JEFE_SHA256)], JEFE_BODY), Ok(()));
    }

    #[test]
    fn hmac_base64_encoding() {
        let hook = jefe(json!({"hmac_encoding": "base64", "hmac_sig_prefix": "sha256="}));
        let header = format!("sha256={JEFE_SHA256_B64}");
        assert_eq!(check(&hook, &[("X-Sig", &header)], JEFE_BODY), Ok(()));
        assert_eq!(check(&hook, &[("X-Sig", JEFE_SHA256)], JEFE_BODY), Err(AuthFailure::WrongSignature));
    }

    #[test]
    fn uppercase_hex_fails() {
        let hook = jefe(json!({}));
        let upper = format!("sha256={}", JEFE_SHA256.to_uppercase());
        assert_eq!(check(&hook, &[("X-Sig", &upper)], JEFE_BODY), Err(AuthFailure::WrongSignature));
        let lower = format!("sha256={JEFE_SHA256}");
        assert_eq!(check(&hook, &[("X-Sig", &lower)], JEFE_BODY), Ok(()));
    }

    #[test]
    fn the_prefix_is_stripped_only_when_present() {
        let hook = jefe(json!({}));
        assert_eq!(check(&hook, &[("X-Sig", JEFE_SHA256)], JEFE_BODY), Ok(()), "no prefix on the value");
    }

    #[test]
    fn hmac_without_a_secret_is_refused() {
        let hook = jefe(json!({"hmac_secret": ""}));
        assert_eq!(check(&hook, &[("X-Sig", JEFE_SHA256)], JEFE_BODY), Err(AuthFailure::NoSecretConfigured));
        let no_header_name = jefe(json!({"hmac_header": ""}));
        assert_eq!(
            check(&no_header_name, &[("X-Sig", JEFE_SHA256)], JEFE_BODY),
            Err(AuthFailure::MissingSignatureHeader)
        );
    }

    #[test]
    fn stripe_style_header_with_look_behind_and_payload_prefix() {
        // HMAC-SHA256("whsec_test", "1492774577." + body), computed outside this crate.
        let body = br#"{"id": "evt_1"}"#;
        let sig = "952cd89626c79cd65f12880afd38333422a10b88ff71136627ceb92ccdb0132c";
        let hook = compiled(json!({
            "auth_mode": "hmac", "hmac_secret": "whsec_test", "hmac_header": "Stripe-Signature",
            "hmac_sig_regex": "(?<=v1=)([0-9a-f]+)", "hmac_payload_prefix_regex": "t=(\\d+)",
        }));
        let header = format!("t=1492774577,v0=00ff,v1={sig}");
        assert_eq!(check(&hook, &[("Stripe-Signature", &header)], body), Ok(()));
        let other_time = format!("t=1492774578,v1={sig}");
        assert_eq!(check(&hook, &[("Stripe-Signature", &other_time)], body), Err(AuthFailure::WrongSignature));
        assert_eq!(check(&hook, &[("Stripe-Signature", "t=1492774577")], body), Err(AuthFailure::NoSignatureFound));
        // Without the prefix regex the body alone is signed: the same header fails.
        let body_only = compiled(json!({
            "auth_mode": "hmac", "hmac_secret": "whsec_test", "hmac_header": "Stripe-Signature",
            "hmac_sig_regex": "v1=([0-9a-f]+)",
        }));
        assert_eq!(check(&body_only, &[("Stripe-Signature", &header)], body), Err(AuthFailure::WrongSignature));
    }

    #[test]
    fn a_prefix_regex_that_does_not_match_signs_the_body_alone() {
        let hook = jefe(json!({"hmac_sig_prefix": "", "hmac_payload_prefix_regex": "t=(\\d+)"}));
        assert_eq!(check(&hook, &[("X-Sig", JEFE_SHA256)], JEFE_BODY), Ok(()));
    }

    #[test]
    fn python_syntax_backreferences_and_named_groups_compile() {
        for pattern in ["(?P<q>['\"])([0-9a-f]+)(?P=q)", "(?<!x)v1=([0-9a-f]+)(?=,|$)", "(\\w)\\1=([0-9a-f]+)"] {
            let hook = hook(json!({"auth_mode": "hmac", "hmac_sig_regex": pattern}));
            let (_, errors) = CompiledHook::compile(hook);
            assert!(errors.is_empty(), "{pattern}: {errors:?}");
        }
    }

    #[test]
    fn a_broken_regex_is_reported_by_hook_and_pattern_and_refuses_requests() {
        let file = Webhooks {
            hooks: vec![
                hook(json!({"id": "bad", "auth_mode": "hmac", "hmac_secret": "Jefe", "hmac_header": "X-Sig",
                            "hmac_sig_prefix": "", "hmac_sig_regex": "v1=([0-9a-f]+"})),
                hook(json!({"id": "nogroup", "auth_mode": "hmac", "hmac_payload_prefix_regex": "t=\\d+"})),
                hook(json!({"id": "bearer", "hmac_sig_regex": "(unused by bearer"})),
            ],
        };
        let (table, errors) = HookTable::compile(&file);
        assert_eq!(table.len(), 3);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!((errors[0].hook.as_str(), errors[0].field), ("bad", "hmac_sig_regex"));
        let text = errors[0].to_string();
        assert!(text.contains("'bad'") && text.contains("v1=([0-9a-f]+") && text.contains("401"), "{text}");
        assert_eq!((errors[1].hook.as_str(), errors[1].field), ("nogroup", "hmac_payload_prefix_regex"));
        assert!(errors[1].reason.contains("group 1"), "{}", errors[1].reason);
        let bad = table.get("bad").unwrap();
        assert_eq!(check(bad, &[("X-Sig", JEFE_SHA256)], JEFE_BODY), Err(AuthFailure::UnusableRegex));
    }

    #[test]
    fn the_first_hook_of_a_repeated_id_counts() {
        let file = Webhooks { hooks: vec![hook(json!({"token": "first"})), hook(json!({"token": "second"}))] };
        let (table, _) = HookTable::compile(&file);
        assert_eq!(table.get("h").unwrap().hook.token, "first");
        assert!(table.get("x").is_none());
    }

    #[test]
    fn lower_hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}

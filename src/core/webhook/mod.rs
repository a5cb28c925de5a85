//! Webhook requests up to "accepted" (ops spec §8.2–§8.6): the verdict on a `POST /hooks/{id}`
//! in the original's order, the hook table with its compiled signature regexes and the
//! authentication (`auth`), the global rate limit and the tally that keeps rejections from
//! flooding the log (`rate_limit`), the prompt a payload renders to (`prompt`), and the token
//! format. Pure: the clock and the random bytes come from the caller.

pub mod auth;
pub mod prompt;
pub mod rate_limit;

use std::time::Instant;

use base64::Engine;
use serde_json::{Map, Value, json};

pub use auth::{AuthFailure, CompiledHook, HookLoadError, HookTable, authenticate, expected_signature};
pub use prompt::{render_template, webhook_prompt, wrap_untrusted};
pub use rate_limit::{RateLimiter, RejectionTally};

/// A request's headers as name → value (names compared without regard to case; the first of
/// repeated names counts, as the original's `headers.get`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeaders(Vec<(String, String)>);

impl RequestHeaders {
    /// The value of the first header called `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for RequestHeaders {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(n, v)| (n.into(), v.into())).collect())
    }
}

/// One request to `/hooks/{id}`, as plain data.
#[derive(Debug, Clone, Copy)]
pub struct HookRequest<'a> {
    /// The HTTP method (`POST`).
    pub method: &'a str,
    /// The `{id}` of the path.
    pub hook_id: &'a str,
    /// The headers.
    pub headers: &'a RequestHeaders,
    /// The raw body.
    pub body: &'a [u8],
}

/// Why a request is refused; each has the status and JSON body of ops spec §8.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not `POST` on `/hooks/{id}` → 405 (answered before the rate limit).
    MethodNotAllowed,
    /// A path the server does not serve → 404.
    PathNotFound,
    /// The global rate limit is used up → 429.
    RateLimited,
    /// The media type is not `application/json` → 415.
    UnsupportedMediaType,
    /// The body is larger than `max_body_bytes` → 413.
    TooLarge,
    /// The body is not JSON → 400.
    InvalidJson,
    /// The body is JSON but not an object → 400.
    NotAnObject,
    /// No hook has this id → 404.
    HookNotFound,
    /// The hook is disabled → 403.
    HookDisabled,
    /// Authentication failed → 401 (the reason is for the debug log only).
    Unauthorized(AuthFailure),
}

impl Rejection {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Self::MethodNotAllowed => 405,
            Self::PathNotFound | Self::HookNotFound => 404,
            Self::RateLimited => 429,
            Self::UnsupportedMediaType => 415,
            Self::TooLarge => 413,
            Self::InvalidJson | Self::NotAnObject => 400,
            Self::HookDisabled => 403,
            Self::Unauthorized(_) => 401,
        }
    }

    /// The error word of the JSON body; also the kind the rejection log counts by.
    pub fn kind(self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PathNotFound => "not_found",
            Self::RateLimited => "rate_limited",
            Self::UnsupportedMediaType => "content_type_must_be_json",
            Self::TooLarge => "payload_too_large",
            Self::InvalidJson => "invalid_json",
            Self::NotAnObject => "body_must_be_object",
            Self::HookNotFound => "hook_not_found",
            Self::HookDisabled => "hook_disabled",
            Self::Unauthorized(_) => "unauthorized",
        }
    }

    /// The JSON body: `{"error": "<kind>"}`.
    pub fn body(self) -> Value {
        json!({ "error": self.kind() })
    }
}

/// What the server answers to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// 202: the payload goes to dispatch.
    Accept {
        /// The hook's id.
        hook_id: String,
        /// The JSON object that was posted.
        payload: Map<String, Value>,
    },
    /// Refused with the rejection's status and body.
    Reject(Rejection),
}

impl Verdict {
    /// The answer of an accepted request: 202 `{"accepted": true, "hook_id": "<id>"}`.
    pub fn accepted_body(hook_id: &str) -> Value {
        json!({ "accepted": true, "hook_id": hook_id })
    }
}

/// The body limit from the config value (a negative value admits only an empty body).
pub fn body_limit(max_body_bytes: i64) -> usize {
    usize::try_from(max_body_bytes).unwrap_or(0)
}

/// Whether a `Content-Type` value names the media type `application/json` (parameters such as
/// `; charset=utf-8` allowed, the type compared without regard to case; a missing header is
/// `application/octet-stream`).
pub fn is_json_media_type(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else { return false };
    let media_type = value.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case("application/json")
}

/// The checks before the body is read, in order: the method (405, not counted by the rate
/// limit), the global rate limit (429; an allowed request is counted whatever follows), the
/// media type (415).
pub fn check_before_body(
    method: &str,
    headers: &RequestHeaders,
    limiter: &mut RateLimiter,
    now: Instant,
) -> Result<(), Rejection> {
    if method != "POST" {
        return Err(Rejection::MethodNotAllowed);
    }
    if !limiter.allow(now) {
        return Err(Rejection::RateLimited);
    }
    if !is_json_media_type(headers.get("content-type")) {
        return Err(Rejection::UnsupportedMediaType);
    }
    Ok(())
}

/// The checks on a body that fitted the limit, in order: JSON (400 `invalid_json`), an object
/// (400 `body_must_be_object`), a known hook (404), enabled (403), authentication (401).
pub fn check_body(
    hook_id: &str,
    headers: &RequestHeaders,
    body: &[u8],
    hooks: &HookTable,
    global_token: &str,
) -> Verdict {
    let payload = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(payload)) => payload,
        Ok(_) => return Verdict::Reject(Rejection::NotAnObject),
        Err(_) => return Verdict::Reject(Rejection::InvalidJson),
    };
    let Some(hook) = hooks.get(hook_id) else { return Verdict::Reject(Rejection::HookNotFound) };
    if !hook.hook.enabled {
        return Verdict::Reject(Rejection::HookDisabled);
    }
    match authenticate(hook, headers, body, global_token) {
        Ok(()) => Verdict::Accept { hook_id: hook.hook.id.clone(), payload },
        Err(failure) => Verdict::Reject(Rejection::Unauthorized(failure)),
    }
}

/// The whole verdict on a request whose body is at hand (ops spec §8.3, in this order): method,
/// rate limit, media type, body size, JSON, object, hook known, enabled, authentication.
pub fn check_request(
    request: &HookRequest<'_>,
    hooks: &HookTable,
    global_token: &str,
    max_body_bytes: usize,
    limiter: &mut RateLimiter,
    now: Instant,
) -> Verdict {
    if let Err(rejection) = check_before_body(request.method, request.headers, limiter, now) {
        return Verdict::Reject(rejection);
    }
    if request.body.len() > max_body_bytes {
        return Verdict::Reject(Rejection::TooLarge);
    }
    check_body(request.hook_id, request.headers, request.body, hooks, global_token)
}

/// A webhook token from 32 random bytes: URL-safe base64 without padding (43 characters).
pub fn token_from_bytes(random: &[u8; 32]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;
    use crate::core::state::webhooks::{Webhook, Webhooks};

    fn hook(id: &str, token: &str) -> Webhook {
        serde_json::from_value(json!({
            "id": id, "title": id, "mode": "wake", "prompt_template": "x", "token": token,
        }))
        .unwrap()
    }

    fn table(hooks: Vec<Webhook>) -> HookTable {
        let (table, errors) = HookTable::compile(&Webhooks { hooks });
        assert!(errors.is_empty(), "{errors:?}");
        table
    }

    fn json_headers(token: &str) -> RequestHeaders {
        [("Content-Type", "application/json".to_owned()), ("Authorization", format!("Bearer {token}"))]
            .into_iter()
            .collect()
    }

    struct Server {
        hooks: HookTable,
        limiter: RateLimiter,
        now: Instant,
    }

    impl Server {
        fn new(per_minute: i64) -> Self {
            let mut disabled = hook("off", "own");
            disabled.enabled = false;
            Self {
                hooks: table(vec![hook("own", "own-token"), hook("shared", ""), disabled]),
                limiter: RateLimiter::new(per_minute),
                now: Instant::now(),
            }
        }

        fn post(&mut self, id: &str, headers: &RequestHeaders, body: &[u8]) -> Verdict {
            let request = HookRequest { method: "POST", hook_id: id, headers, body };
            check_request(&request, &self.hooks, "global-token", 64, &mut self.limiter, self.now)
        }
    }

    fn rejected(verdict: &Verdict) -> (u16, Value) {
        match verdict {
            Verdict::Reject(r) => (r.status(), r.body()),
            Verdict::Accept { hook_id, .. } => (202, Verdict::accepted_body(hook_id)),
        }
    }

    #[test]
    fn a_good_request_is_accepted_with_its_payload() {
        let mut server = Server::new(30);
        let verdict = server.post("own", &json_headers("own-token"), br#"{"from": "a", "n": 1}"#);
        let Verdict::Accept { hook_id, payload } = verdict else { panic!("{verdict:?}") };
        assert_eq!(hook_id, "own");
        assert_eq!(Value::Object(payload), json!({"from": "a", "n": 1}));
        assert_eq!(Verdict::accepted_body("own"), json!({"accepted": true, "hook_id": "own"}));
    }

    #[test]
    fn global_token_only_for_hooks_without_their_own() {
        let mut server = Server::new(30);
        assert_eq!(rejected(&server.post("own", &json_headers("global-token"), b"{}")).0, 401);
        assert_eq!(rejected(&server.post("shared", &json_headers("global-token"), b"{}")).0, 202);
        assert_eq!(rejected(&server.post("shared", &json_headers("own-token"), b"{}")).0, 401);
    }

    #[test]
    fn each_check_answers_with_its_status_and_error_body() {
        let mut server = Server::new(1000);
        let good = json_headers("own-token");
        let text: RequestHeaders =
            [("Content-Type", "text/plain"), ("Authorization", "Bearer own-token")].into_iter().collect();
        let cases: Vec<(Verdict, u16, Option<&str>)> = vec![
            (server.post("own", &text, b"{}"), 415, Some("content_type_must_be_json")),
            (server.post("own", &good, &[b' '; 65]), 413, None),
            (server.post("own", &good, b"{"), 400, Some("invalid_json")),
            (server.post("own", &good, b"[]"), 400, Some("body_must_be_object")),
            (server.post("nope", &good, b"{}"), 404, Some("hook_not_found")),
            (server.post("off", &good, b"{}"), 403, Some("hook_disabled")),
            (server.post("own", &json_headers("wrong"), b"{}"), 401, Some("unauthorized")),
        ];
        for (verdict, status, error) in cases {
            let (got_status, body) = rejected(&verdict);
            assert_eq!(got_status, status, "{verdict:?}");
            if let Some(error) = error {
                assert_eq!(body, json!({ "error": error }));
            }
        }
    }

    #[test]
    fn the_checks_run_in_the_spec_order() {
        let mut server = Server::new(1000);
        let text: RequestHeaders = [("Content-Type", "text/plain")].into_iter().collect();
        // 415 comes before 413, 400 and 404.
        assert_eq!(rejected(&server.post("nope", &text, &[b'['; 100])).0, 415);
        let no_auth: RequestHeaders = [("Content-Type", "application/json")].into_iter().collect();
        // 413 before 400 and 404.
        assert_eq!(rejected(&server.post("nope", &no_auth, &[b'['; 65])).0, 413);
        // 400 before 404.
        assert_eq!(rejected(&server.post("nope", &no_auth, b"{")).0, 400);
        assert_eq!(rejected(&server.post("nope", &no_auth, b"1")).0, 400);
        // 404 before 401, 403 before 401.
        assert_eq!(rejected(&server.post("nope", &no_auth, b"{}")).0, 404);
        assert_eq!(rejected(&server.post("off", &no_auth, b"{}")).0, 403);
        assert_eq!(rejected(&server.post("own", &no_auth, b"{}")).0, 401);
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_read() {
        let mut server = Server::new(30);
        let mut body = b"{}".to_vec();
        body.resize(64, b' ');
        assert_eq!(rejected(&server.post("own", &json_headers("own-token"), &body)).0, 202);
        body.push(b' ');
        assert_eq!(rejected(&server.post("own", &json_headers("own-token"), &body)).0, 413);
    }

    #[test]
    fn the_fourth_request_in_a_minute_is_rate_limited_whatever_it_is() {
        let mut server = Server::new(3);
        let text: RequestHeaders = [("Content-Type", "text/plain")].into_iter().collect();
        assert_eq!(rejected(&server.post("own", &text, b"{}")).0, 415);
        assert_eq!(rejected(&server.post("nope", &json_headers("x"), b"{}")).0, 404);
        assert_eq!(rejected(&server.post("own", &json_headers("own-token"), b"{}")).0, 202);
        let (status, body) = rejected(&server.post("own", &json_headers("own-token"), b"{}"));
        assert_eq!((status, body), (429, json!({"error": "rate_limited"})));
        assert_eq!(rejected(&server.post("own", &text, b"{}")).0, 429);
        server.now += Duration::from_secs(60);
        assert_eq!(rejected(&server.post("own", &json_headers("own-token"), b"{}")).0, 202);
    }

    #[test]
    fn other_methods_are_405_and_do_not_use_the_quota() {
        let mut server = Server::new(1);
        let headers = json_headers("own-token");
        for method in ["GET", "PUT", "DELETE", "post"] {
            let request = HookRequest { method, hook_id: "own", headers: &headers, body: b"{}" };
            let verdict = check_request(&request, &server.hooks, "", 64, &mut server.limiter, server.now);
            assert_eq!(verdict, Verdict::Reject(Rejection::MethodNotAllowed));
        }
        assert_eq!(rejected(&server.post("own", &headers, b"{}")).0, 202);
    }

    #[test]
    fn media_type_parameters_and_case_are_allowed() {
        assert!(is_json_media_type(Some("application/json")));
        assert!(is_json_media_type(Some("application/json; charset=utf-8")));
        assert!(is_json_media_type(Some("Application/JSON;charset=UTF-8")));
        assert!(!is_json_media_type(Some("application/jsonx")));
        assert!(!is_json_media_type(Some("text/json")));
        assert!(!is_json_media_type(Some("application/x-www-form-urlencoded")));
        assert!(!is_json_media_type(None));
    }

    #[test]
    fn header_names_are_found_in_any_case_and_the_first_counts() {
        let headers: RequestHeaders = [("X-Sig", "one"), ("x-sig", "two")].into_iter().collect();
        assert_eq!(headers.get("X-SIG"), Some("one"));
        assert_eq!(headers.get("x-other"), None);
    }

    #[test]
    fn tokens_are_43_url_safe_characters() {
        let token = token_from_bytes(&[0xfb; 32]);
        assert_eq!(token.len(), 43);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{token}");
        assert!(token.contains('-') || token.contains('_'), "URL-safe alphabet: {token}");
        assert_ne!(token_from_bytes(&[1; 32]), token);
    }

    #[test]
    fn a_negative_body_limit_admits_only_empty_bodies() {
        assert_eq!(body_limit(-5), 0);
        assert_eq!(body_limit(262_144), 262_144);
    }
}

//! Where an envelope goes: the delivery rule of transports spec §4.3 step 4, as a pure function.
//!
//! Divergences from 0.18.2 (both SHOULD fixes):
//! - With no transport configured the envelope is *held* in the outbox, not dropped.
//! - The fallback for an unserved transport is a BROADCAST that every adapter delivers for
//!   every origin, so it really reaches someone (0.18.2 dropped it for most origins).

use serde::{Deserialize, Serialize};

use crate::core::envelope::{DeliveryMode, Envelope};
use crate::core::session_key::ChatId;

/// One adapter to hand an envelope to, and how.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// Adapter (transport) short name: `tg`, `mx`, `api`, ...
    pub transport: String,
    /// UNICAST to the envelope's chat, or BROADCAST.
    pub mode: DeliveryMode,
}

/// The routing decision for one envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Deliver the envelope to these adapters.
    Deliver(Vec<Target>),
    /// The envelope names a transport this agent does not serve: deliver this replacement
    /// BROADCAST envelope to `target` instead.
    Fallback {
        /// The replacement envelope.
        envelope: Box<Envelope>,
        /// Where it goes.
        target: Target,
    },
    /// No transport is configured: keep it in the outbox.
    Hold,
}

/// Routes `envelope` over the transports this agent serves (short names, primary first).
pub fn route(envelope: &Envelope, served: &[String]) -> Route {
    if served.is_empty() {
        return Route::Hold;
    }
    let all = |mode| served.iter().map(|t| Target { transport: t.clone(), mode }).collect();
    match envelope.delivery {
        DeliveryMode::Broadcast => Route::Deliver(all(DeliveryMode::Broadcast)),
        DeliveryMode::Unicast if envelope.transport.is_empty() => Route::Deliver(all(DeliveryMode::Unicast)),
        DeliveryMode::Unicast if served.contains(&envelope.transport) => {
            Route::Deliver(vec![Target { transport: envelope.transport.clone(), mode: DeliveryMode::Unicast }])
        }
        DeliveryMode::Unicast => {
            let first = served[0].clone();
            Route::Fallback {
                envelope: Box::new(fallback_envelope(envelope)),
                target: Target { transport: first, mode: DeliveryMode::Broadcast },
            }
        }
    }
}

/// The replacement for an envelope whose transport is not served: same origin, status and
/// metadata and id, chat 0, BROADCAST, text prefixed with `**Delivery fallback**`.
pub fn fallback_envelope(original: &Envelope) -> Envelope {
    let text = format!(
        "**Delivery fallback**\nTransport `{}` is not available; delivering here instead.\n---\n{}",
        original.transport, original.result_text
    );
    Envelope {
        origin: original.origin,
        chat_id: ChatId(0),
        topic_id: None,
        transport: String::new(),
        status: original.status.clone(),
        is_error: original.is_error,
        metadata: original.metadata.clone(),
        delivery: DeliveryMode::Broadcast,
        result_text: text,
        envelope_id: original.envelope_id.clone(),
        created_at: original.created_at,
        elapsed_seconds: original.elapsed_seconds,
        provider: original.provider.clone(),
        model: original.model.clone(),
        session_name: original.session_name.clone(),
        ..Envelope::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::envelope::Origin;

    fn served(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn unicast(transport: &str) -> Envelope {
        Envelope {
            origin: Origin::Cron,
            chat_id: ChatId(5),
            transport: transport.into(),
            result_text: "hi".into(),
            ..Envelope::default()
        }
    }

    #[test]
    fn unicast_goes_to_its_transport_only() {
        let route = route(&unicast("mx"), &served(&["tg", "mx"]));
        assert_eq!(route, Route::Deliver(vec![Target { transport: "mx".into(), mode: DeliveryMode::Unicast }]));
    }

    #[test]
    fn empty_transport_means_all() {
        let Route::Deliver(targets) = route(&unicast(""), &served(&["tg", "mx"])) else { panic!() };
        assert_eq!(targets.len(), 2);
        assert!(targets.iter().all(|t| t.mode == DeliveryMode::Unicast));
    }

    #[test]
    fn broadcast_goes_to_all() {
        let env = Envelope { delivery: DeliveryMode::Broadcast, ..unicast("tg") };
        let Route::Deliver(targets) = route(&env, &served(&["tg", "mx"])) else { panic!() };
        assert_eq!(targets.iter().map(|t| t.transport.as_str()).collect::<Vec<_>>(), ["tg", "mx"]);
        assert!(targets.iter().all(|t| t.mode == DeliveryMode::Broadcast));
    }

    #[test]
    fn unserved_transport_falls_back_to_a_broadcast_on_the_primary() {
        let Route::Fallback { envelope, target } = route(&unicast("mx"), &served(&["tg"])) else { panic!() };
        assert_eq!(target, Target { transport: "tg".into(), mode: DeliveryMode::Broadcast });
        assert_eq!(envelope.delivery, DeliveryMode::Broadcast);
        assert_eq!(envelope.chat_id, ChatId(0));
        assert_eq!(envelope.origin, Origin::Cron);
        assert!(envelope.result_text.starts_with("**Delivery fallback**"));
        assert!(envelope.result_text.ends_with("---\nhi"));
    }

    #[test]
    fn nothing_served_holds() {
        assert_eq!(route(&unicast("tg"), &[]), Route::Hold);
    }
}

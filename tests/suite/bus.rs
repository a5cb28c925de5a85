//! The Bus end to end inside one process: durable submit, routing, retries, restarts.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::adapters::{Behaviour, spawn_recorder};
use ductor::core::envelope::{DeliveryMode, Envelope, EnvelopeId, Origin};
use ductor::runtime::bus::{Bus, BusArgs, BusHandle};
use ractor::Actor;

async fn start_bus(
    journal: &camino::Utf8Path,
    served: &[&str],
    handle: &BusHandle,
) -> ractor::ActorRef<ductor::runtime::bus::BusMsg> {
    let args = BusArgs {
        agent: "main".into(),
        journal: journal.to_owned(),
        served: served.iter().map(|s| (*s).to_owned()).collect(),
        registry: handle.registry(),
        batch_fsync: true,
        gate: None,
    };
    let (bus, _) = Actor::spawn(None, Bus, args).await.unwrap();
    handle.slot().set(bus.clone());
    bus
}

fn cron(chat: i128, transport: &str, text: &str) -> Envelope {
    Envelope {
        origin: Origin::Cron,
        chat_id: ductor::core::session_key::ChatId(chat),
        transport: transport.into(),
        result_text: text.into(),
        ..Envelope::default()
    }
}

async fn wait_until(mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn ten_thousand_submissions_get_distinct_12_hex_ids() {
    let (_dir, home) = crate::support::temp_home();
    let handle = BusHandle::new();
    let _bus = start_bus(&home.join("outbox.jsonl"), &["tg"], &handle).await;
    let (recorder, _rx) = spawn_recorder("tg", &handle).await;
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..10 {
        let handle = handle.clone();
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for i in 0..1000 {
                ids.push(handle.submit(cron(chunk * 1000 + i, "tg", "x")).await.unwrap());
            }
            ids
        });
    }
    let mut ids = HashSet::new();
    while let Some(batch) = tasks.join_next().await {
        for id in batch.unwrap() {
            assert!(EnvelopeId::parse(id.as_str()).is_some(), "{id}");
            ids.insert(id);
        }
    }
    assert_eq!(ids.len(), 10_000);
    wait_until(|| recorder.delivered().len() == 10_000).await;
    let stats = handle.stats().await.unwrap();
    assert_eq!(stats.pending, 0);
    assert!(stats.fsyncs < 10_000, "concurrent submissions share fsyncs ({} fsyncs)", stats.fsyncs);
}

#[tokio::test(start_paused = true)]
async fn envelope_submitted_while_adapter_fails_is_delivered_once_after_recovery() {
    let (_dir, home) = crate::support::temp_home();
    let handle = BusHandle::new();
    let _bus = start_bus(&home.join("outbox.jsonl"), &["tg"], &handle).await;
    let (recorder, _rx) = spawn_recorder("tg", &handle).await;
    recorder.set(Behaviour::FailRetryable);
    let id = handle.submit(cron(7, "tg", "hello")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(recorder.attempts() >= 3, "retried while failing ({} attempts)", recorder.attempts());
    assert!(recorder.delivered().is_empty());
    assert_eq!(handle.stats().await.unwrap().pending, 1, "kept in the outbox while failing");
    recorder.set(Behaviour::Deliver);
    tokio::time::sleep(Duration::from_secs(120)).await;
    let delivered = recorder.delivered();
    assert_eq!(delivered.len(), 1, "delivered once only");
    assert_eq!(delivered[0].0.envelope_id, id);
    assert_eq!(delivered[0].0.result_text, "hello");
    assert_eq!(handle.stats().await.unwrap().pending, 0);
}

#[tokio::test]
async fn unicast_goes_to_its_transport_and_broadcast_to_all() {
    let (_dir, home) = crate::support::temp_home();
    let handle = BusHandle::new();
    let _bus = start_bus(&home.join("outbox.jsonl"), &["tg", "mx"], &handle).await;
    let (tg, _a) = spawn_recorder("tg", &handle).await;
    let (mx, _b) = spawn_recorder("mx", &handle).await;
    handle.submit(cron(1, "mx", "only matrix")).await.unwrap();
    handle.submit(Envelope { delivery: DeliveryMode::Broadcast, ..cron(0, "tg", "everyone") }).await.unwrap();
    wait_until(|| mx.delivered().len() == 2 && tg.delivered().len() == 1).await;
    assert_eq!(tg.delivered()[0].0.result_text, "everyone");
    assert_eq!(tg.delivered()[0].1, DeliveryMode::Broadcast);
    let mx_texts: Vec<_> = mx.delivered().into_iter().map(|(e, _)| e.result_text).collect();
    assert_eq!(mx_texts, ["only matrix", "everyone"]);
}

#[tokio::test]
async fn envelope_for_an_unserved_transport_falls_back_to_a_broadcast_that_arrives() {
    let (_dir, home) = crate::support::temp_home();
    let handle = BusHandle::new();
    let _bus = start_bus(&home.join("outbox.jsonl"), &["tg"], &handle).await;
    let (tg, mut rx) = spawn_recorder("tg", &handle).await;
    handle.submit(Envelope { origin: Origin::TaskResult, ..cron(5, "mx", "report") }).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert!(got.result_text.starts_with("**Delivery fallback**"), "{}", got.result_text);
    assert!(got.result_text.ends_with("report"));
    assert_eq!(got.origin, Origin::TaskResult, "non-cron origins reach someone too");
    assert_eq!(tg.delivered()[0].1, DeliveryMode::Broadcast);
}

#[tokio::test]
async fn broadcast_reaches_the_other_adapters_when_one_refuses() {
    let (_dir, home) = crate::support::temp_home();
    let handle = BusHandle::new();
    let _bus = start_bus(&home.join("outbox.jsonl"), &["tg", "mx"], &handle).await;
    let (tg, _a) = spawn_recorder("tg", &handle).await;
    let (mx, _b) = spawn_recorder("mx", &handle).await;
    tg.set(Behaviour::FailPermanent);
    handle.submit(Envelope { delivery: DeliveryMode::Broadcast, ..cron(0, "", "cron result") }).await.unwrap();
    wait_until(|| mx.delivered().len() == 1).await;
    wait_until(|| tg.attempts() == 1).await;
    let stats = handle.stats().await.unwrap();
    assert_eq!(stats.pending, 0, "a permanent refusal is not retried forever");
}

#[tokio::test]
async fn pending_envelopes_are_delivered_after_a_bus_restart() {
    let (_dir, home) = crate::support::temp_home();
    let journal = home.join("outbox.jsonl");
    let handle = BusHandle::new();
    let bus = start_bus(&journal, &["tg"], &handle).await;
    let first = handle.submit(cron(1, "tg", "one")).await.unwrap();
    let second = handle.submit(cron(2, "tg", "two")).await.unwrap();
    bus.stop_and_wait(None, None).await.unwrap();

    let handle = BusHandle::new();
    let _bus = start_bus(&journal, &["tg"], &handle).await;
    let (tg, _rx) = spawn_recorder("tg", &handle).await;
    wait_until(|| tg.delivered().len() == 2).await;
    let ids: Vec<_> = tg.delivered().into_iter().map(|(e, _)| e.envelope_id).collect();
    assert_eq!(ids, [first, second], "redelivered in the order accepted");
    wait_until(|| std::fs::read_to_string(&journal).unwrap().lines().count() == 4).await;
}

#[tokio::test]
async fn held_envelopes_wait_for_a_transport() {
    let (_dir, home) = crate::support::temp_home();
    let journal = home.join("outbox.jsonl");
    let handle = BusHandle::new();
    let bus = start_bus(&journal, &[], &handle).await;
    handle.submit(cron(1, "tg", "kept")).await.unwrap();
    assert_eq!(handle.stats().await.unwrap().pending, 1);
    bus.stop_and_wait(None, None).await.unwrap();

    let handle = BusHandle::new();
    let _bus = start_bus(&journal, &["tg"], &handle).await;
    let (tg, _rx) = spawn_recorder("tg", &handle).await;
    wait_until(|| tg.delivered().len() == 1).await;
    assert_eq!(tg.delivered()[0].0.result_text, "kept");
}

#[tokio::test]
async fn submit_without_a_running_bus_is_a_clear_error() {
    let handle = BusHandle::new();
    let err = handle.submit(cron(1, "tg", "x")).await.unwrap_err();
    assert_eq!(err.to_string(), "the bus is not running");
}

#[tokio::test]
async fn a_result_with_a_delivery_key_is_recorded_and_delivered_once_also_across_a_restart() {
    let (_dir, home) = crate::support::temp_home();
    let journal = home.join("outbox.jsonl");
    let handle = BusHandle::new();
    let bus = start_bus(&journal, &["tg"], &handle).await;
    let (tg, _rx) = spawn_recorder("tg", &handle).await;
    assert_eq!(handle.accepted("cron:daily:1").await.unwrap(), None, "nothing accepted yet");
    let first = handle.submit(cron(7, "tg", "result").with_delivery_key("cron:daily:1")).await.unwrap();
    let again = handle.submit(cron(7, "tg", "result").with_delivery_key("cron:daily:1")).await.unwrap();
    assert_eq!(again, first, "the second submission answers with the first envelope");
    wait_until(|| tg.delivered().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tg.delivered().len(), 1, "delivered once");
    bus.stop_and_wait(None, None).await.unwrap();

    // After a restart (the journal compacted at open) the key is still known.
    let _bus = start_bus(&journal, &["tg"], &handle).await;
    assert_eq!(handle.accepted("cron:daily:1").await.unwrap(), Some(first.clone()));
    let after = handle.submit(cron(7, "tg", "result").with_delivery_key("cron:daily:1")).await.unwrap();
    assert_eq!(after, first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tg.delivered().len(), 1, "not delivered again after the restart");
    assert_eq!(handle.accepted("cron:daily:2").await.unwrap(), None);
}

//! The restart contract, tested on a real Agent with paused tokio time: crash → restart after
//! 5/10/20/40/80 s, the 6th crash gives up with a `[Supervisor]` notice through the Bus; a
//! `restart` stop rebuilds at once; a normal stop stays stopped.

use std::time::Duration;

use crate::support::adapters::spawn_recorder;
use ductor::core::envelope::Envelope;
use ductor::core::health::{ActorKind, ActorStatus};
use ductor::core::supervision::RESTART_REASON;
use ductor::runtime::bus::BusHandle;
use ductor::runtime::health_board::HealthBoard;
use ductor::runtime::supervision::ChildSpec;
use ductor::store::paths::DuctorPaths;
use ductor::tree::agent::{Agent, AgentArgs, AgentMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A child that reports each start and crashes, panics or stops when told.
struct Flaky;

#[derive(Debug)]
enum FlakyMsg {
    Fail,
    Panic,
    StopNormally,
    AskRestart,
}

type Starts = mpsc::UnboundedSender<(Instant, ActorRef<FlakyMsg>)>;

impl Actor for Flaky {
    type Msg = FlakyMsg;
    type State = ();
    type Arguments = Starts;

    async fn pre_start(&self, myself: ActorRef<FlakyMsg>, starts: Starts) -> Result<(), ActorProcessingErr> {
        let _ = starts.send((Instant::now(), myself));
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<FlakyMsg>, msg: FlakyMsg, _: &mut ()) -> Result<(), ActorProcessingErr> {
        match msg {
            FlakyMsg::Fail => Err("flaky failed on purpose".into()),
            FlakyMsg::Panic => panic!("flaky panicked on purpose"),
            FlakyMsg::StopNormally => {
                myself.stop(None);
                Ok(())
            }
            FlakyMsg::AskRestart => {
                myself.stop(Some(RESTART_REASON.to_owned()));
                Ok(())
            }
        }
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    board: HealthBoard,
    starts: mpsc::UnboundedReceiver<(Instant, ActorRef<FlakyMsg>)>,
    notices: mpsc::UnboundedReceiver<Envelope>,
    agent: ActorRef<AgentMsg>,
}

async fn harness() -> Harness {
    let (dir, home) = crate::support::temp_home();
    let board = HealthBoard::new();
    let bus = BusHandle::new();
    let (starts_tx, starts) = mpsc::unbounded_channel();
    let flaky = ChildSpec::actor("flaky", ActorKind::Observer, None, move || (Flaky, starts_tx.clone()));
    let args = AgentArgs {
        matrix: false,
        name: "main".into(),
        paths: DuctorPaths::at(home),
        board_path: "root/main".into(),
        board: board.clone(),
        bus: bus.clone(),
        served: vec!["tg".into()],
        batch_fsync: true,
        spool: None,
        restart_marker_poll: Duration::from_secs(3600),
        extra_children: vec![flaky],
        config: std::sync::Arc::new(ductor::core::config::Config::default()),
        orchestrator: ductor::chat::orchestrator::OrchestratorHandle::new(),
        cli_path: Vec::new(),
        telegram_api: None,
        queue: ductor::runtime::dependency_queue::DependencyQueue::new(),
        timing: ductor::tree::agent::ObserverTiming::default(),
        cli_env: Vec::new(),
        agent_control: None,
    };
    board.register("root/main", "main", ActorKind::Agent);
    let (agent, _) = Actor::spawn(None, Agent, args).await.unwrap();
    let (_recorder, notices) = spawn_recorder("tg", &bus).await;
    Harness { _dir: dir, board, starts, notices, agent }
}

impl Harness {
    async fn next_start(&mut self) -> (Instant, ActorRef<FlakyMsg>) {
        tokio::time::timeout(Duration::from_secs(1000), self.starts.recv()).await.expect("a start").expect("open")
    }

    async fn no_start_within(&mut self, wait: Duration) {
        assert!(tokio::time::timeout(wait, self.starts.recv()).await.is_err(), "unexpected restart");
    }
}

#[tokio::test(start_paused = true)]
async fn crashes_restart_after_5_10_20_40_80_s_then_give_up_with_a_notice() {
    let mut h = harness().await;
    let (mut last, mut flaky) = h.next_start().await;
    let mut delays = Vec::new();
    for crash in 0..5 {
        if crash % 2 == 0 {
            flaky.cast(FlakyMsg::Fail).unwrap();
        } else {
            flaky.cast(FlakyMsg::Panic).unwrap();
        }
        let (at, next) = h.next_start().await;
        delays.push(at - last);
        (last, flaky) = (at, next);
    }
    assert_eq!(delays, [5, 10, 20, 40, 80].map(Duration::from_secs));
    assert_eq!(h.board.tree("root/main").unwrap().find("flaky").unwrap().restarts, 5);

    flaky.cast(FlakyMsg::Fail).unwrap();
    let notice = tokio::time::timeout(Duration::from_secs(5), h.notices.recv()).await.unwrap().unwrap();
    assert!(notice.result_text.starts_with("[Supervisor]"), "{}", notice.result_text);
    assert!(notice.result_text.contains("'flaky'") && notice.result_text.contains("flaky failed on purpose"));
    h.no_start_within(Duration::from_secs(600)).await;
    let node = h.board.tree("root/main").unwrap().find("flaky").cloned().unwrap();
    assert_eq!(node.status, ActorStatus::Crashed);
    assert_eq!(node.last_failure.as_deref(), Some("flaky failed on purpose"));
    assert_eq!(h.board.status("root/main/bus"), Some(ActorStatus::Running), "the rest keeps running");
}

#[tokio::test(start_paused = true)]
async fn restart_stop_rebuilds_at_once_and_resets_the_backoff() {
    let mut h = harness().await;
    let (_, flaky) = h.next_start().await;
    flaky.cast(FlakyMsg::Fail).unwrap();
    let (_, flaky) = h.next_start().await;
    flaky.cast(FlakyMsg::Fail).unwrap();
    let (before, flaky) = h.next_start().await;
    flaky.cast(FlakyMsg::AskRestart).unwrap();
    let (at, flaky) = h.next_start().await;
    assert_eq!(at - before, Duration::ZERO, "rebuilt at once");
    flaky.cast(FlakyMsg::Fail).unwrap();
    let (again, _) = h.next_start().await;
    assert_eq!(again - at, Duration::from_secs(5), "crash counter was reset");
}

#[tokio::test(start_paused = true)]
async fn normal_stop_is_not_restarted() {
    let mut h = harness().await;
    let (_, flaky) = h.next_start().await;
    flaky.cast(FlakyMsg::StopNormally).unwrap();
    h.no_start_within(Duration::from_secs(300)).await;
    assert_eq!(h.board.status("root/main/flaky"), Some(ActorStatus::Stopped));
}

#[tokio::test(start_paused = true)]
async fn agent_restart_request_stops_it_with_the_restart_reason() {
    let h = harness().await;
    let cell = h.agent.get_cell();
    h.agent.cast(AgentMsg::RequestRestart { why: "test".into() }).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while cell.get_status() != ractor::ActorStatus::Stopped {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(h.board.status("root/main/bus"), Some(ActorStatus::Stopped), "children stopped with it");
}

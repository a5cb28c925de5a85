//! The Session actor: one per `SessionKey` (`tg:<chat>[:<topic>]`). It owns the chat's FIFO
//! queue: one turn at a time, the next starting only when the previous one ended, in arrival
//! order. `Stop` and `Interrupt` act at once (they are not queued): the turn itself runs in a
//! task, so the actor's mailbox stays free while a CLI works.
//!
//! Each running turn shows in the actor tree as a child named after its CLI (`claude`, ...).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot, watch};

use crate::core::health::ActorKind;
use crate::core::session_key::SessionKey;
use crate::core::stream_event::{StreamEvent, TurnResult};
use crate::core::text::render;
use crate::core::turn_outcome::{Recovery, needs_recovery, outcome, reply_text};
use crate::provider::runner::{Control, RunSettings, run_turn};
use crate::provider::{Invocation, ProviderKind, TurnTranscript};
use crate::runtime::health_board::HealthBoard;

/// What a chat receives about one of its messages.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOutput {
    /// Waiting behind `ahead` other messages of this chat.
    Queued {
        /// Messages before it.
        ahead: usize,
    },
    /// Its turn started.
    Started,
    /// A stream event of the running turn (text deltas, tools, ...).
    Event(StreamEvent),
    /// The turn ended: the reply text (answer or error explanation) and the raw result.
    Finished {
        /// What to show.
        text: String,
        /// The folded result.
        result: TurnResult,
        /// The model that answered (empty when the CLI could not run).
        model: String,
    },
    /// The turn was stopped or interrupted: nothing more comes.
    Stopped,
    /// `/stop` removed it from the queue before it ran.
    Discarded,
    /// A notice (command answers).
    Notice(String),
    /// A menu of buttons (selectors); a press comes back as its callback data.
    Menu(crate::core::selector::Menu),
}

/// Where a message's outputs go (the transport's per-message stream).
pub type ReplyTo = mpsc::UnboundedSender<SessionOutput>;

/// Called by the Session when a message's turn starts — after the Orchestrator planned it,
/// before its CLI is started. The transport records the start in its inbox here (that record
/// replaces the Orchestrator's in-flight record for such turns), so a crash after the spawn
/// reports the message as cut once and never runs it again.
pub struct StartHook(Box<dyn FnOnce() + Send>);

impl StartHook {
    /// A hook running `f`.
    pub fn new(f: impl FnOnce() + Send + 'static) -> Self {
        Self(Box::new(f))
    }

    fn run(self) {
        (self.0)();
    }
}

impl std::fmt::Debug for StartHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartHook")
    }
}

/// One message waiting for its turn.
#[derive(Debug)]
pub struct TurnRequest {
    /// The prompt.
    pub prompt: String,
    /// Which flow the turn belongs to.
    pub flow: TurnFlow,
    /// Where its outputs go.
    pub reply: ReplyTo,
    /// Run when the turn starts, before the CLI.
    pub on_start: Option<StartHook>,
}

/// How a turn runs, decided by the owner when the turn starts (not when it was queued), so a
/// queued message resumes the session the previous turn created.
#[derive(Debug, Clone)]
pub struct TurnPlan {
    /// The CLI.
    pub kind: ProviderKind,
    /// Model (for error replies).
    pub model: String,
    /// What to start.
    pub invocation: Invocation,
    /// Where and how.
    pub settings: RunSettings,
}

/// Plans a turn: `(key, prompt, flow, fresh, tracked)` → the plan (`fresh`: drop the CLI session
/// first, for the recovery gate; `tracked`: the message's transport records the turn's start in
/// its inbox, so no in-flight record is needed), or `None` when the turn cannot run.
pub type Planner = Arc<
    dyn Fn(SessionKey, String, TurnFlow, bool, bool) -> Pin<Box<dyn Future<Output = Option<TurnPlan>> + Send>>
        + Send
        + Sync,
>;

/// Which conversation a turn belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnFlow {
    /// The chat's own session; `model` is an `@model` directive's override.
    Normal {
        /// The model the directive asked for.
        model: Option<String>,
    },
    /// A named session (`@name …`).
    Named(String),
    /// A Bus envelope's prompt, run in the chat's active session (no prompt hooks); with a
    /// model, that model's provider session of the chat is used for this turn only (a webhook
    /// in wake mode with its own model).
    Injection {
        /// The model for this turn (none: the chat's).
        model: Option<String>,
    },
    /// A silent memory turn after the CLI compacted its context (core spec §4.8): the answer
    /// is discarded and the session's counters stay as they are.
    Memory(MemoryTurn),
    /// A heartbeat check (core spec §4.6): the answer is an alert unless it is the ack token.
    Heartbeat {
        /// The reply meaning "nothing to say".
        ack_token: String,
    },
}

/// Which silent memory turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryTurn {
    /// Write what is worth keeping to MAINMEMORY.md before the context is compacted.
    Flush,
    /// Rewrite MAINMEMORY.md shorter.
    Compact,
}

/// A finished turn, reported to the owner, which persists the session and then hands `output`
/// to `reply` (so what the user sees is already on disk).
#[derive(Debug, Clone)]
pub struct TurnFinished {
    /// The chat.
    pub key: SessionKey,
    /// The CLI (none when the turn could not be planned).
    pub kind: Option<ProviderKind>,
    /// Its result.
    pub result: TurnResult,
    /// Whether the user stopped or interrupted it.
    pub aborted: bool,
    /// Which flow the turn belonged to.
    pub flow: TurnFlow,
    /// The CLI compacted its context during the turn.
    pub compacted: bool,
    /// The last output for the message.
    pub output: SessionOutput,
    /// Where it goes.
    pub reply: ReplyTo,
}

/// What `/stop` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Running turns stopped (0 or 1).
    pub stopped: usize,
    /// Queued messages discarded.
    pub discarded: usize,
}

/// Messages of a Session.
#[derive(Debug)]
pub enum SessionMsg {
    /// Queue a turn (FIFO).
    Turn(Box<TurnRequest>),
    /// Queue a place in line: `done` fires when everything before it has finished (an
    /// envelope with `lock_mode = required` waits for the chat's turns this way).
    Barrier {
        /// Fired when it is this entry's turn.
        done: oneshot::Sender<()>,
    },
    /// `/interrupt`: SIGINT to the running CLI; the queue is kept. Answers how many.
    Interrupt {
        /// Running turns signalled.
        reply: RpcReplyPort<usize>,
    },
    /// `/stop`: stop the running turn and discard the queue.
    Stop {
        /// What was done.
        reply: RpcReplyPort<StopReport>,
    },
    /// Whether a turn is running and how many wait.
    Busy {
        /// (running, queued).
        reply: RpcReplyPort<(bool, usize)>,
    },
    /// The running turn's task ended (internal).
    TurnEnded {
        /// Its plan and transcript, or why it could not run.
        ended: Result<(ProviderKind, String, TurnTranscript), String>,
    },
}

/// Construction arguments.
#[derive(Clone)]
pub struct SessionArgs {
    /// The chat.
    pub key: SessionKey,
    /// Its path on the health board.
    pub board_path: String,
    /// The health board.
    pub board: HealthBoard,
    /// Plans each turn when it starts.
    pub planner: Planner,
    /// Called when a turn ended.
    pub on_finished: Arc<dyn Fn(TurnFinished) + Send + Sync>,
}

impl std::fmt::Debug for SessionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionArgs").field("key", &self.key).finish()
    }
}

struct Running {
    control: watch::Sender<Control>,
    reply: ReplyTo,
    flow: TurnFlow,
    aborted: bool,
}

/// An entry of the chat's queue.
enum Queued {
    Turn(TurnRequest),
    Barrier(oneshot::Sender<()>),
}

impl Queued {
    /// `/stop` removes it: a turn is discarded, a barrier released.
    fn discard(self) {
        match self {
            Self::Turn(request) => {
                let _ = request.reply.send(SessionOutput::Discarded);
            }
            Self::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// The Session actor.
#[derive(Debug, Default)]
pub struct Session;

/// Its state.
pub struct SessionState {
    args: SessionArgs,
    queue: VecDeque<Queued>,
    running: Option<Running>,
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState").field("key", &self.args.key).field("queued", &self.queue.len()).finish()
    }
}

impl Actor for Session {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        args.board.register(&args.board_path, &args.key.storage_key(), ActorKind::Session);
        args.board.running(&args.board_path);
        Ok(SessionState { args, queue: VecDeque::new(), running: None })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(running) = &state.running {
            let _ = running.control.send(Control::Stop);
        }
        // The Session stops with ductor (a restart, a shutdown): the messages waiting in its
        // queue are not discarded — their outputs end unanswered, so their transports keep them
        // in the inbox and the next start runs them.
        for queued in state.queue.drain(..) {
            if let Queued::Barrier(done) = queued {
                let _ = done.send(());
            }
        }
        state.args.board.remove(&state.args.board_path);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Turn(request) => {
                if state.running.is_some() || !state.queue.is_empty() {
                    let _ = request.reply.send(SessionOutput::Queued { ahead: state.queue.len() + 1 });
                    state.queue.push_back(Queued::Turn(*request));
                } else {
                    state.start(&myself, *request);
                }
            }
            SessionMsg::Barrier { done } => {
                if state.running.is_some() || !state.queue.is_empty() {
                    state.queue.push_back(Queued::Barrier(done));
                } else {
                    let _ = done.send(());
                }
            }
            SessionMsg::Interrupt { reply } => {
                let count = match &mut state.running {
                    Some(running) => {
                        running.aborted = true;
                        let _ = running.control.send(Control::Interrupt);
                        1
                    }
                    None => 0,
                };
                let _ = reply.send(count);
            }
            SessionMsg::Stop { reply } => {
                let stopped = match &mut state.running {
                    Some(running) => {
                        running.aborted = true;
                        let _ = running.control.send(Control::Stop);
                        1
                    }
                    None => 0,
                };
                let discarded = state.queue.iter().filter(|q| matches!(q, Queued::Turn(_))).count();
                for queued in state.queue.drain(..) {
                    queued.discard();
                }
                let _ = reply.send(StopReport { stopped, discarded });
            }
            SessionMsg::Busy { reply } => {
                let _ = reply.send((state.running.is_some(), state.queue.len()));
            }
            SessionMsg::TurnEnded { ended } => {
                state.finish(ended);
                state.start_next(&myself);
            }
        }
        Ok(())
    }
}

impl SessionState {
    /// Starts the next queued turn, releasing the barriers before it.
    fn start_next(&mut self, myself: &ActorRef<SessionMsg>) {
        while let Some(next) = self.queue.pop_front() {
            match next {
                // Nobody listens for its outputs any more: the sender cancelled it while it
                // waited (a transport's "Cancel message" button drops the receiver).
                Queued::Turn(request) if request.reply.is_closed() => {
                    tracing::debug!(actor = %self.args.key, "A queued message was cancelled; skipped.");
                }
                Queued::Turn(request) => {
                    self.start(myself, request);
                    return;
                }
                Queued::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn start(&mut self, myself: &ActorRef<SessionMsg>, mut request: TurnRequest) {
        let (control, control_rx) = watch::channel(Control::Run);
        let on_start = request.on_start.take();
        let tracked = on_start.is_some();
        let _ = request.reply.send(SessionOutput::Started);
        let events = request.reply.clone();
        let reply = request.reply.clone();
        let flow = request.flow.clone();
        let me = myself.clone();
        let key = self.args.key.clone();
        let planner = Arc::clone(&self.args.planner);
        let board = self.args.board.clone();
        let board_path = self.args.board_path.clone();
        tracing::debug!(actor = %key, "Turn started.");
        tokio::spawn(async move {
            let run = |plan: TurnPlan, control_rx: watch::Receiver<Control>| {
                let events = events.clone();
                let board = board.clone();
                let run_path = format!("{board_path}/{}", plan.kind.name());
                async move {
                    board.register(&run_path, plan.kind.name(), ActorKind::Provider);
                    board.running(&run_path);
                    let mut parser = plan.kind.stream_parser();
                    let transcript = run_turn(&plan.invocation, parser.as_mut(), &plan.settings, control_rx, |event| {
                        let _ = events.send(SessionOutput::Event(event.clone()));
                    })
                    .await;
                    board.remove(&run_path);
                    transcript.map(|t| (plan.kind, plan.model, t)).map_err(|e| e.to_string())
                }
            };
            let mut ended =
                match planner(key.clone(), request.prompt.clone(), request.flow.clone(), false, tracked).await {
                    None => Err("the turn could not be prepared".to_owned()),
                    Some(plan) => {
                        // Before the CLI: a crash from here on is reported as cut (by the transport,
                        // from its inbox), never re-run; a crash before it re-runs the message.
                        if let Some(hook) = on_start {
                            hook.run();
                        }
                        run(plan, control_rx.clone()).await
                    }
                };
            // Recovery gate (core spec §4.2): a session the CLI no longer knows, or a CLI killed
            // from outside, is retried once in a fresh session — unless the user stopped it.
            let recovery = match &ended {
                Ok((_, _, transcript)) if *control_rx.borrow() == Control::Run => needs_recovery(&transcript.result),
                _ => None,
            };
            if let Some(kind) = recovery {
                tracing::info!(actor = %key, reason = ?kind, "Retrying the turn in a fresh session.");
                if kind == Recovery::InvalidSession {
                    let notice = format!("{}\n\n", render("session.recovered", &[]));
                    let _ = events.send(SessionOutput::Event(StreamEvent::TextDelta { text: notice }));
                }
                if let Some(plan) = planner(key, request.prompt, request.flow, true, tracked).await {
                    ended = run(plan, control_rx).await.map(|(kind, model, mut transcript)| {
                        if needs_recovery(&transcript.result) == Some(Recovery::InvalidSession) {
                            transcript.result.result = render("session.recovery_failed", &[]);
                        } else if !transcript.result.is_error {
                            transcript.result.result =
                                format!("{}\n\n{}", render("session.recovered", &[]), transcript.result.result);
                        }
                        (kind, model, transcript)
                    });
                }
            }
            let _ = me.cast(SessionMsg::TurnEnded { ended });
        });
        self.running = Some(Running { control, reply, flow, aborted: false });
    }

    fn finish(&mut self, ended: Result<(ProviderKind, String, TurnTranscript), String>) {
        let Some(running) = self.running.take() else { return };
        let compacted = matches!(&ended, Ok((_, _, t)) if t.events.iter().any(|e| matches!(e, StreamEvent::CompactBoundary { .. })));
        let (kind, result, output) = match ended {
            Ok((kind, model, transcript)) => {
                let result = transcript.result;
                let output = if running.aborted {
                    SessionOutput::Stopped
                } else {
                    SessionOutput::Finished {
                        text: reply_text(&outcome(&result), &model),
                        result: result.clone(),
                        model: model.clone(),
                    }
                };
                (Some(kind), result, output)
            }
            Err(error) => {
                let result = TurnResult { is_error: true, result: error, ..TurnResult::default() };
                let output = SessionOutput::Finished {
                    text: reply_text(&outcome(&result), "the CLI"),
                    result: result.clone(),
                    model: String::new(),
                };
                (None, result, output)
            }
        };
        tracing::debug!(actor = %self.args.key, aborted = running.aborted, is_error = result.is_error, "Turn ended.");
        (self.args.on_finished)(TurnFinished {
            key: self.args.key.clone(),
            kind,
            result,
            aborted: running.aborted,
            flow: running.flow,
            compacted,
            output,
            reply: running.reply,
        });
    }
}

/// The notice for a `/stop`.
pub fn stop_notice(report: StopReport, provider: ProviderKind) -> String {
    if report.stopped == 0 && report.discarded == 0 {
        render("stop.nothing", &[])
    } else {
        render("stop.killed", &[("provider", provider.display_name()), ("discarded", &report.discarded.to_string())])
    }
}

//! The Telegram transport (transports spec §2): the actor (`telegram` in the tree, Bus transport
//! `tg`), one answer task per message, the ordered lane per chat every Bot API call goes
//! through, and the pure parts — Markdown → Telegram HTML and splitting, the ingress rules,
//! the live message of streamed answers.

mod actor;
mod commands;
mod delivery;
mod groups;
pub mod html;
pub mod ingress;
pub mod lanes;
pub mod live_message;
pub mod turn;

pub use actor::{OFFICIAL_API, TELEGRAM_TRANSPORT, Telegram, TelegramArgs, TelegramMsg, TelegramState, api_base};

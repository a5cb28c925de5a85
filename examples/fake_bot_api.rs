//! The fake Telegram Bot API server of the tests, run by hand: point ductor at it with
//! `DUCTOR_TELEGRAM_API_BASE=http://127.0.0.1:<port>` and play the person with the control side
//! (`curl -d '{"chat_id":7,"text":"hi"}' http://127.0.0.1:<port>/control/text`; see
//! `tests/suite/support/fake_bot_api.rs` for the other control routes).
//!
//! Run: `cargo run --example fake_bot_api -- [--port 8081] [--token 123:ABC]`.

#[path = "../tests/suite/support/fake_bot_api.rs"]
mod fake_bot_api;

use std::net::SocketAddr;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut port = 8081u16;
    let mut token = "123456:TEST-TOKEN".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(value)) => port = value.parse()?,
            ("--token", Some(value)) => token = value,
            _ => anyhow::bail!("usage: fake_bot_api [--port N] [--token TOKEN]"),
        }
    }
    let server = fake_bot_api::FakeBotApi::start_on(&token, SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("fake Bot API for token {token} at {}", server.base_url());
    println!("person: POST {}/control/text {{\"chat_id\":7,\"text\":\"hi\"}}", server.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

//! The fake Bot API server against the real teloxide client: the shapes teloxide must parse,
//! long polling with Telegram's offset rules, HTML checked like Telegram does, and the failures
//! tests inject.

use std::time::Duration;

use crate::support::fake_bot_api::{BOT_ID, Failure, FakeBotApi};
use teloxide::payloads::{DeleteWebhookSetters, EditMessageTextSetters, GetUpdatesSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode, ReplyParameters, UpdateKind,
};
use teloxide::{ApiError, Bot, RequestError};

async fn server() -> (FakeBotApi, Bot) {
    let api = FakeBotApi::start("123:ABC").await.unwrap();
    let bot = Bot::new("123:ABC").set_api_url(api.base_url().parse().unwrap());
    (api, bot)
}

#[tokio::test]
async fn get_me_and_long_polling_with_offsets() {
    let (api, bot) = server().await;
    let me = bot.get_me().await.unwrap();
    assert_eq!(me.id.0, BOT_ID);

    let waiting = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(5).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the long poll waits for an update");
    api.send_text(7, 7, "hello");
    let updates = tokio::time::timeout(Duration::from_secs(3), waiting).await.unwrap().unwrap().unwrap();
    assert_eq!(updates.len(), 1);
    let UpdateKind::Message(message) = &updates[0].kind else { panic!("{updates:?}") };
    assert_eq!(message.text(), Some("hello"));
    let next = updates[0].id.0 as i32 + 1;
    assert!(bot.get_updates().offset(next).timeout(0).await.unwrap().is_empty(), "confirmed by the offset");

    api.send_text(7, 7, "while down");
    bot.delete_webhook().drop_pending_updates(true).await.unwrap();
    assert_eq!(api.pending_updates(), 0, "drop_pending_updates drops them");
}

#[tokio::test]
async fn messages_edits_and_telegrams_errors() {
    let (api, bot) = server().await;
    let asked = api.send_text(7, 7, "question");
    let sent = bot
        .send_message(ChatId(7), "<b>answer</b>")
        .parse_mode(ParseMode::Html)
        .reply_parameters(ReplyParameters::new(MessageId(asked as i32)).allow_sending_without_reply())
        .reply_markup(InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("Yes", "Yes")]]))
        .await
        .unwrap();
    assert_eq!(sent.reply_to_message().map(|m| m.id.0 as i64), Some(asked));
    let edited = bot.edit_message_text(ChatId(7), sent.id, "<i>better</i>").parse_mode(ParseMode::Html).await.unwrap();
    assert_eq!(edited.text(), Some("better"), "teloxide reads the edited message");
    let same = bot.edit_message_text(ChatId(7), sent.id, "<i>better</i>").parse_mode(ParseMode::Html).await;
    assert!(matches!(same, Err(RequestError::Api(ApiError::MessageNotModified))), "{same:?}");
    let bad = bot.send_message(ChatId(7), "<b>open").parse_mode(ParseMode::Html).await;
    assert!(matches!(bad, Err(RequestError::Api(ApiError::CantParseEntities(_)))), "{bad:?}");
    let long = bot.send_message(ChatId(7), "x".repeat(4097)).await;
    assert!(matches!(long, Err(RequestError::Api(ApiError::MessageIsTooLong))), "{long:?}");

    api.fail("sendMessage", Failure::RetryAfter(3), 1);
    let limited = bot.send_message(ChatId(7), "later").await;
    assert!(matches!(limited, Err(RequestError::RetryAfter(s)) if s.seconds() == 3), "{limited:?}");
    assert!(bot.send_message(ChatId(7), "now").await.is_ok(), "one failure only");
    let shown: Vec<String> = api.bot_messages(7).iter().map(|m| m.text.clone()).collect();
    assert_eq!(shown, ["<i>better</i>", "now"]);
}

#[tokio::test]
async fn button_presses_parse_in_teloxide() {
    let (api, bot) = server().await;
    let sent = bot
        .send_message(ChatId(7), "Pick")
        .reply_markup(InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("Yes", "Yes")]]))
        .await
        .unwrap();
    api.press_button(7, 7, sent.id.0 as i64, "Yes");
    let updates = bot.get_updates().timeout(1).await.unwrap();
    let UpdateKind::CallbackQuery(query) = &updates[0].kind else { panic!("{updates:?}") };
    assert_eq!(query.data.as_deref(), Some("Yes"));
    bot.answer_callback_query(query.id.clone()).await.unwrap();
    assert_eq!(api.calls_of("answerCallbackQuery").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_side_works_over_http() {
    let (api, bot) = server().await;
    let port: u16 = api.base_url().rsplit(':').next().unwrap().parse().unwrap();
    let post = |path: &str, body: &str| crate::support::binary::request(port, "POST", path, Some(body)).unwrap();
    let (code, answer) = post("/control/text", r#"{"chat_id": 7, "text": "hi over HTTP"}"#);
    assert_eq!(code, 200, "{answer}");
    let updates = bot.get_updates().timeout(1).await.unwrap();
    let UpdateKind::Message(message) = &updates[0].kind else { panic!("{updates:?}") };
    assert_eq!(message.text(), Some("hi over HTTP"));
    post("/control/fail", r#"{"method": "sendMessage", "failure": "forbidden", "times": 1}"#);
    assert!(bot.send_message(ChatId(7), "x").await.is_err());
    let (_, calls) = post("/control/calls", "{}");
    assert!(calls.contains("\"sendMessage\""), "{calls}");
}

/// The durable inbox stores teloxide's own serialisation of a message and reads it back when it
/// replays the message after a crash: that only works without the `null` fields.
#[tokio::test]
async fn a_received_message_reads_back_from_its_stored_form() {
    let (api, bot) = server().await;
    api.send_message(-1005, 7, "/status@DuctorTestBot now", Some(3), None);
    let updates = bot.get_updates().timeout(1).await.unwrap();
    let UpdateKind::Message(message) = &updates[0].kind else { panic!("{updates:?}") };
    let stored = ductor::core::inbox::without_nulls(serde_json::to_value(message).unwrap());
    let back: teloxide::types::Message = serde_json::from_value(stored).unwrap();
    assert_eq!(back.text(), message.text());
    assert_eq!(back.thread_id, message.thread_id);
    assert_eq!(back.entities().map(<[_]>::len), Some(1));
    let raw = serde_json::to_value(message).unwrap();
    assert!(
        serde_json::from_value::<teloxide::types::Update>(serde_json::json!({"update_id": 1, "message": raw}))
            .is_ok_and(|u| matches!(u.kind, UpdateKind::Error(_))),
        "with nulls it does not read back as a message"
    );
}

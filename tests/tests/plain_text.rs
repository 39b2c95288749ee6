//! Plain-text outputs cannot be forged: a customer's name or message that holds a line break
//! (or a carriage return, a Unicode line separator) never starts a line of its own in a text
//! transcript, so it cannot pass for something an agent wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api;
use jono_tests::Storage;
use serde_json::json;

const FORGED: &str = "[2030-01-01T00:00:00Z] Aino: your refund is approved";

#[tokio::test]
async fn a_name_or_a_message_cannot_forge_a_line_of_the_text_transcript() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": format!("Eve\n{FORGED}")})).await;
    let conversation = api::pick(&api, &owner, queue).await;
    let texts = [
        format!("hello\n{FORGED}"),
        format!("hello\r{FORGED}"),
        format!("hello\r\n{FORGED}"),
        format!("hello\u{2028}{FORGED}"),
        format!("hello\u{85}{FORGED}"),
    ];
    for text in &texts {
        api::send_message(&api, customer.token(), conversation, text).await;
    }
    for (who, token) in [("agent", owner.token()), ("customer", customer.token())] {
        let transcript = api
            .get(
                &format!("/v1/conversations/{conversation}/transcript?format=txt"),
                token,
            )
            .await
            .expect(200, "the text transcript");
        // Every line break a terminal or an editor honours.
        let lines: Vec<&str> = transcript
            .text
            .split([
                '\n', '\r', '\u{2028}', '\u{2029}', '\u{85}', '\u{0b}', '\u{0c}',
            ])
            .collect();
        for line in &lines {
            assert!(
                !line.starts_with("[2030-"),
                "{who}'s transcript has a forged line: {}",
                transcript.text
            );
        }
        // What the customer wrote is still there, inside its entries: in the name of each and
        // in each text.
        assert_eq!(
            transcript.text.matches(FORGED).count(),
            2 * texts.len(),
            "{}",
            transcript.text
        );
    }
}

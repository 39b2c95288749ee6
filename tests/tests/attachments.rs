//! Attachments (API.md, Conversations and Limits): a file uploaded to a conversation, sent
//! with a message and fetched through its signed URL with headers that keep it from running in
//! our origin; 10 MiB a file and 100 MiB a conversation; a message may carry only its own
//! conversation's attachments; outsiders cannot upload; a tampered or expired URL opens
//! nothing, while a live one outlives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, Agent, Api, Customer, Reply};
use jono_tests::{Server, Storage};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use uuid::Uuid;

const MIB: usize = 1024 * 1024;

/// A tiny PNG: its signature and an IHDR chunk are all the sniffing looks at.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// A customer in a queue of Acme's, picked by Acme's owner.
struct Scene {
    owner: Agent,
    customer: Customer,
    conversation: Uuid,
}

async fn scene(api: &Api) -> Scene {
    let owner = api::sign_up(api, "Acme").await;
    let queue = api::open_queue_handled_by(api, &owner, "Support").await;
    let customer = api::join(api, queue, json!({"name": "Cora"})).await;
    let conversation = api::pick(api, &owner, queue).await;
    assert_eq!(conversation, customer.conversation_id);
    Scene {
        owner,
        customer,
        conversation,
    }
}

/// A `multipart/form-data` body with one file part: `(content type, body)`.
fn multipart(file_name: &str, claimed_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("jono-test-{}", Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {claimed_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `POST /v1/conversations/{c}/attachments` with a ready body.
async fn post_body(
    api: &Api,
    token: Option<&str>,
    conversation: Uuid,
    content_type: &str,
    body: Vec<u8>,
) -> Reply {
    let mut request = api
        .http
        .post(format!(
            "{}/v1/conversations/{conversation}/attachments",
            api.base
        ))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

async fn upload(
    api: &Api,
    token: Option<&str>,
    conversation: Uuid,
    file_name: &str,
    claimed_type: &str,
    bytes: &[u8],
) -> Reply {
    let (content_type, body) = multipart(file_name, claimed_type, bytes);
    post_body(api, token, conversation, &content_type, body).await
}

/// `GET` a URL as anyone: `(status, headers, bytes)`.
async fn fetch(api: &Api, url: &str) -> (u16, HeaderMap, Vec<u8>) {
    let response = api
        .http
        .get(format!("{}{url}", api.base))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body").to_vec();
    (status, headers, bytes)
}

/// Sends only the head of an upload announcing `length` bytes and reads the answer: a server
/// that refuses early answers without waiting for the body. `(status, head)`.
fn announce_only(server: &Server, token: &str, conversation: Uuid, length: usize) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /v1/conversations/{conversation}/attachments HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=b\r\n\
         Content-Length: {length}\r\n\r\n",
        server.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // Up to the end of the head and a little of the body is enough.
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let n = stream.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

#[track_caller]
fn assert_safe_headers(headers: &HeaderMap, what: &str) {
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(
        header(headers, "content-security-policy"),
        "default-src 'none'; sandbox",
        "{what}"
    );
}

fn url_of(reply: &Reply) -> String {
    reply.body["url"].as_str().expect("a url").to_owned()
}

async fn send_with(
    api: &Api,
    token: Option<&str>,
    conversation: Uuid,
    attachments: &[Uuid],
) -> Reply {
    api.post(
        &format!("/v1/conversations/{conversation}/messages"),
        token,
        json!({"text": "see attached", "attachments": attachments}),
    )
    .await
}

/// The `AttachmentUploaded` events of a conversation, read from a stopped server's log.
async fn uploads_in_log(storage: &Storage, conversation: Uuid) -> usize {
    let dir = storage.data_dir().expect("an embedded store");
    let store = store::EventStore::open_sqlite(dir).await.unwrap();
    store
        .load_stream("conversation", &conversation.to_string())
        .await
        .unwrap()
        .iter()
        .filter(|event| event.event_type == "AttachmentUploaded")
        .count()
}

#[tokio::test]
async fn a_file_sent_with_a_message_is_fetched_through_its_url_with_safe_headers() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let s = scene(&api).await;

    // The client's claimed type is ignored: the bytes say PNG.
    let reply = upload(
        &api,
        s.customer.token(),
        s.conversation,
        "../../cat.png",
        "text/html",
        PNG,
    )
    .await
    .expect(201, "uploading a picture");
    let id = reply.id("attachment_id");
    assert_eq!(
        reply.body["name"], "cat.png",
        "the path is gone: {}",
        reply.text
    );
    assert_eq!(reply.body["size"], PNG.len());
    assert_eq!(reply.body["content_type"], "image/png");
    let url = url_of(&reply);
    assert!(url.starts_with(&format!("/v1/attachments/{id}?")), "{url}");

    let sent = send_with(&api, s.customer.token(), s.conversation, &[id])
        .await
        .expect(201, "a message with the picture");
    let seq = sent.body["seq"].as_i64().unwrap();

    // Both participants see it in the message, with a fresh URL.
    for (who, token) in [("agent", s.owner.token()), ("customer", s.customer.token())] {
        let messages = api::messages(&api, token, s.conversation).await;
        let message = messages
            .iter()
            .find(|message| message["seq"] == seq)
            .unwrap_or_else(|| panic!("{who}: the message is listed"));
        let attachment = &message["attachments"][0];
        assert_eq!(attachment["attachment_id"], json!(id), "{who}");
        assert_eq!(attachment["name"], "cat.png", "{who}");
        assert_eq!(attachment["size"], PNG.len(), "{who}");
        assert_eq!(attachment["content_type"], "image/png", "{who}");
        let url = attachment["url"].as_str().expect("a url in the message");
        let (status, headers, bytes) = fetch(&api, url).await;
        assert_eq!(
            status, 200,
            "{who}: the message's url works without a token"
        );
        assert_eq!(bytes, PNG, "{who}");
        assert_eq!(header(&headers, "content-type"), "image/png");
        assert!(
            header(&headers, "content-disposition").starts_with("inline"),
            "a raster image is inline: {:?}",
            header(&headers, "content-disposition")
        );
        assert_safe_headers(&headers, who);
    }
    let transcript = api
        .get(
            &format!("/v1/conversations/{}/transcript", s.conversation),
            s.owner.token(),
        )
        .await
        .expect(200, "transcript");
    let in_transcript = transcript.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|message| {
            message["attachments"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|attachment| attachment["attachment_id"] == json!(id))
        .expect("the transcript lists the attachment");
    let (status, _, _) = fetch(&api, in_transcript["url"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the transcript's url works");

    // Text and PDF keep their type but are downloads; anything else is bytes to save.
    let cases: [(&str, &[u8], &str, &str); 3] = [
        (
            "notes.txt",
            b"hello\nworld\n",
            "text/plain",
            "text/plain; charset=utf-8",
        ),
        (
            "report.pdf",
            b"%PDF-1.7\n%\xe2\xe3\n",
            "application/pdf",
            "application/pdf",
        ),
        (
            "blob.bin",
            b"\0\x01\x02\x03\xff",
            "application/octet-stream",
            "application/octet-stream",
        ),
    ];
    for (name, bytes, stored, served) in cases {
        let reply = upload(
            &api,
            s.owner.token(),
            s.conversation,
            name,
            "image/png",
            bytes,
        )
        .await
        .expect(201, name);
        assert_eq!(reply.body["content_type"], stored, "{name}");
        let (status, headers, body) = fetch(&api, &url_of(&reply)).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(body, bytes, "{name}");
        assert_eq!(header(&headers, "content-type"), served, "{name}");
        assert_eq!(
            header(&headers, "content-disposition"),
            format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}"),
            "{name}"
        );
        assert_safe_headers(&headers, name);
    }
}

#[tokio::test]
async fn html_and_svg_are_served_as_downloads_never_inline() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let s = scene(&api).await;
    let html = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>";
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    for (name, claimed, bytes) in [
        ("page.html", "text/html", &html[..]),
        ("logo.svg", "image/svg+xml", &svg[..]),
    ] {
        let reply = upload(
            &api,
            s.customer.token(),
            s.conversation,
            name,
            claimed,
            bytes,
        )
        .await
        .expect(201, name);
        assert_eq!(
            reply.body["content_type"], "text/plain",
            "{name}: {}",
            reply.text
        );
        let (status, headers, body) = fetch(&api, &url_of(&reply)).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(body, bytes);
        let content_type = header(&headers, "content-type");
        assert!(
            !content_type.contains("html") && !content_type.contains("svg"),
            "{name} served as {content_type}"
        );
        assert!(
            header(&headers, "content-disposition").starts_with("attachment;"),
            "{name} is a download: {:?}",
            header(&headers, "content-disposition")
        );
        assert_safe_headers(&headers, name);
    }
}

#[tokio::test]
async fn ten_mib_and_one_byte_is_413_and_nothing_is_appended() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let s = scene(&api).await;
    let too_big = vec![b'a'; 10 * MIB + 1];
    upload(
        &api,
        s.owner.token(),
        s.conversation,
        "big.txt",
        "text/plain",
        &too_big,
    )
    .await
    .expect_problem(413, "10 MiB + 1 byte");
    // A body announced past the route's limit is refused before it is sent, as a problem.
    let (status, head) = announce_only(&server, &s.owner.token, s.conversation, 12 * MIB);
    assert_eq!(status, 413, "a 12 MiB body: {head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    let exactly = vec![b'a'; 10 * MIB];
    let reply = upload(
        &api,
        s.owner.token(),
        s.conversation,
        "ten.txt",
        "text/plain",
        &exactly,
    )
    .await
    .expect(201, "exactly 10 MiB");
    assert_eq!(reply.body["size"], 10 * MIB);
    // Nothing else: no stray file part, an empty file, a missing part.
    upload(
        &api,
        s.owner.token(),
        s.conversation,
        "empty.txt",
        "text/plain",
        b"",
    )
    .await
    .expect_problem(422, "an empty file");
    let boundary = "nofile";
    let no_file =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhi\r\n--{boundary}--\r\n");
    post_body(
        &api,
        s.owner.token(),
        s.conversation,
        &format!("multipart/form-data; boundary={boundary}"),
        no_file.into_bytes(),
    )
    .await
    .expect_problem(400, "no file part");
    api.post(
        &format!("/v1/conversations/{}/attachments", s.conversation),
        s.owner.token(),
        json!({"file": "not multipart"}),
    )
    .await
    .expect_problem(400, "not multipart");

    server.terminate();
    assert_eq!(
        uploads_in_log(&storage, s.conversation).await,
        1,
        "only the 10 MiB file was recorded"
    );
    let files = std::fs::read_dir(storage.data_dir().unwrap().join("attachments"))
        .unwrap()
        .count();
    assert_eq!(files, 1, "only the accepted file's bytes are kept");
}

#[tokio::test]
async fn a_conversation_holds_100_mib_of_attachments_and_no_byte_more() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let s = scene(&api).await;
    let ten = vec![b'q'; 10 * MIB];
    for n in 1..=10 {
        upload(
            &api,
            s.owner.token(),
            s.conversation,
            "part.txt",
            "text/plain",
            &ten,
        )
        .await
        .expect(201, &format!("upload {n} of 10 MiB"));
    }
    upload(
        &api,
        s.customer.token(),
        s.conversation,
        "one.txt",
        "text/plain",
        b"1",
    )
    .await
    .expect_problem(413, "one byte past 100 MiB");
    // The quota is the conversation's: another one takes files still.
    let queue = api::open_queue_handled_by(&api, &s.owner, "Sales").await;
    let other = api::join(&api, queue, json!({})).await;
    upload(
        &api,
        other.token(),
        other.conversation_id,
        "one.txt",
        "text/plain",
        b"1",
    )
    .await
    .expect(201, "another conversation");
}

#[tokio::test]
async fn a_message_may_carry_only_its_own_conversations_attachments() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let s = scene(&api).await;
    let queue = api::open_queue_handled_by(&api, &s.owner, "Sales").await;
    let other = api::join(&api, queue, json!({})).await;
    let theirs = upload(
        &api,
        other.token(),
        other.conversation_id,
        "a.png",
        "image/png",
        PNG,
    )
    .await
    .expect(201, "the other customer's upload")
    .id("attachment_id");
    // Neither this conversation's customer nor its agent can send the other's file here.
    send_with(&api, s.customer.token(), s.conversation, &[theirs])
        .await
        .expect_problem(422, "a customer sending another conversation's attachment");
    send_with(&api, s.owner.token(), s.conversation, &[theirs])
        .await
        .expect_problem(422, "an agent sending another conversation's attachment");
    send_with(&api, s.owner.token(), s.conversation, &[Uuid::new_v4()])
        .await
        .expect_problem(422, "an attachment that does not exist");
    let texts = api::texts(&api, s.owner.token(), s.conversation).await;
    assert!(
        !texts.iter().any(|text| text == "see attached"),
        "nothing was sent: {texts:?}"
    );
    send_with(&api, other.token(), other.conversation_id, &[theirs])
        .await
        .expect(201, "in its own conversation it goes");
}

#[tokio::test]
async fn outsiders_cannot_upload() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let s = scene(&api).await;
    let stranger = api::sign_up(&api, "Globex").await;
    upload(
        &api,
        stranger.token(),
        s.conversation,
        "x.png",
        "image/png",
        PNG,
    )
    .await
    .expect_problem(404, "another organization's agent");
    let queue = api::open_queue_handled_by(&api, &s.owner, "Sales").await;
    let other = api::join(&api, queue, json!({})).await;
    upload(
        &api,
        other.token(),
        s.conversation,
        "x.png",
        "image/png",
        PNG,
    )
    .await
    .expect_problem(404, "another conversation's customer");
    upload(&api, None, s.conversation, "x.png", "image/png", PNG)
        .await
        .expect_problem(401, "no token");
    upload(
        &api,
        s.owner.token(),
        Uuid::new_v4(),
        "x.png",
        "image/png",
        PNG,
    )
    .await
    .expect_problem(404, "a conversation that does not exist");
}

#[tokio::test]
async fn a_tampered_or_expired_url_opens_nothing_and_a_live_one_outlives_a_restart() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let s = scene(&api).await;
    let reply = upload(
        &api,
        s.customer.token(),
        s.conversation,
        "cat.png",
        "image/png",
        PNG,
    )
    .await
    .expect(201, "upload");
    let id = reply.id("attachment_id");
    let url = url_of(&reply);
    let (path, query) = url.split_once('?').unwrap();
    let params: Vec<(&str, &str)> = query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap())
        .collect();
    let expires: i64 = params
        .iter()
        .find(|(k, _)| *k == "expires")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let sig = params.iter().find(|(k, _)| *k == "sig").unwrap().1;
    let flipped: String = sig
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == '0' {
                    '1'
                } else {
                    '0'
                }
            } else {
                c
            }
        })
        .collect();
    let other_id = Uuid::new_v4();
    for (what, bad) in [
        (
            "a flipped signature",
            format!("{path}?expires={expires}&sig={flipped}"),
        ),
        (
            "a later expiry",
            format!("{path}?expires={}&sig={sig}", expires + 86_400),
        ),
        ("no signature", format!("{path}?expires={expires}")),
        ("no expiry", format!("{path}?sig={sig}")),
        ("nothing", path.to_owned()),
        (
            "another id",
            format!("/v1/attachments/{other_id}?expires={expires}&sig={sig}"),
        ),
    ] {
        let (status, headers, _) = fetch(&api, &bad).await;
        assert_eq!(status, 404, "{what}");
        assert!(
            header(&headers, "content-type").starts_with("application/problem+json"),
            "{what}"
        );
    }
    assert_eq!(fetch(&api, &url).await.0, 200, "the genuine URL works");

    // A URL signed with the server's own key, but for an hour ago, is expired.
    server.terminate();
    let key = {
        let dir = storage.data_dir().unwrap();
        let store = store::EventStore::open_sqlite(dir).await.unwrap();
        gateway::secrets::url_signing_key(store.backend())
            .await
            .unwrap()
    };
    let signer = gateway::blobs::UrlSigner::new(key);
    // The URL was signed at `expires - 1 h`; one signed two hours before that died an hour ago.
    let signed_at = expires - 3600;
    let stale = signer.url(id, signed_at - 2 * 3600);
    let (server, api) = api::start(&storage);
    assert_eq!(
        fetch(&api, &url).await.0,
        200,
        "the key is kept across a restart"
    );
    let (status, _, _) = fetch(&api, &stale).await;
    assert_eq!(status, 404, "an expired URL: {stale}");
    let fresh = signer.url(id, signed_at);
    assert_eq!(
        fetch(&api, &fresh).await.0,
        200,
        "the same key, still in time"
    );
    drop(server);
}

/// API.md: a message's text may be empty when it carries attachments; with neither it is 422.
#[tokio::test]
async fn a_file_is_sent_without_text_but_an_empty_message_is_refused() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let s = scene(&api).await;
    let path = format!("/v1/conversations/{}/messages", s.conversation);
    for body in [
        json!({"text": ""}),
        json!({"text": "   "}),
        json!({"text": "", "attachments": []}),
    ] {
        api.post(&path, s.customer.token(), body.clone())
            .await
            .expect_problem(422, &format!("an empty message {body}"));
    }
    for (who, token) in [("customer", s.customer.token()), ("agent", s.owner.token())] {
        let file = upload(&api, token, s.conversation, "a.png", "image/png", PNG)
            .await
            .expect(201, "an upload")
            .id("attachment_id");
        api.post(
            &path,
            token,
            json!({"text": "", "attachments": [file.to_string()]}),
        )
        .await
        .expect(201, &format!("the {who}'s file alone"));
        let messages = api::messages(&api, s.owner.token(), s.conversation).await;
        let last = messages.last().expect("the message");
        assert_eq!(last["text"], "", "{last}");
        assert_eq!(last["attachments"][0]["attachment_id"], file.to_string());
    }
}

//! gmail against a mock of the Gmail API: all twelve tools send the method, path, query, bearer
//! token and body the API expects; the messages send_email, create_draft and forward_email
//! build are decoded from the `raw` Gmail received and checked header by header; header
//! injection is refused before anything is sent; a 401 is answered by one refresh at Google's
//! token endpoint and one retry.

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_PAD_INDIFFERENT};
use base64::Engine;
use common::{
    call_tool as call_raw, call_tool_ok as call, google_app, modern_meta, mount_google_refresh,
    saved_credentials, shipped_server, text_of as text, StdioClient,
};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn gmail(root: &std::path::Path, upstream: &MockServer) -> StdioClient {
    let tokens =
        json!({ "access_token": "ya29.mail", "refresh_token": "r1", "expires_at": 4102444800_i64 });
    shipped_server(root, "gmail", tokens, &upstream.uri())
}

/// A request as Gmail checks it: the verb, the path and the bearer token.
fn gmail_request(verb: &str, route: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(route))
        .and(header("authorization", "Bearer ya29.mail"))
}

fn answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn b64url(text: &str) -> String {
    URL_SAFE.encode(text.as_bytes())
}

/// The JSON bodies Gmail received on `route`, in order.
async fn bodies(upstream: &MockServer, route: &str) -> Vec<Value> {
    upstream
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|request| request.url.path() == route)
        .map(|request| serde_json::from_slice(&request.body).expect("a JSON body"))
        .collect()
}

/// An RFC 5322 message as the test reads it back: unfolded headers (names lower-cased, in
/// order) and the body with its transfer encoding undone.
struct Parsed {
    headers: Vec<(String, String)>,
    body: String,
}

impl Parsed {
    fn from_raw(raw: &str) -> Parsed {
        let bytes = URL_SAFE_PAD_INDIFFERENT
            .decode(raw)
            .expect("raw is base64url");
        let message = String::from_utf8(bytes).expect("the message is UTF-8");
        let (head, body) = message
            .split_once("\r\n\r\n")
            .expect("headers, a blank line, the body");
        for line in head.split("\r\n") {
            assert!(line.len() <= 998, "header line too long: {line}");
        }
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", "\t");
        let headers: Vec<(String, String)> = unfolded
            .split("\r\n")
            .map(|line| {
                let (name, value) = line.split_once(':').expect("name: value");
                (name.to_ascii_lowercase(), value.trim_start().to_owned())
            })
            .collect();
        let parsed = Parsed {
            headers,
            body: String::new(),
        };
        let body = match parsed.get("content-transfer-encoding") {
            Some("base64") => String::from_utf8(
                STANDARD
                    .decode(body.replace("\r\n", ""))
                    .expect("a base64 body"),
            )
            .expect("a UTF-8 body"),
            _ => body.to_owned(),
        };
        Parsed { body, ..parsed }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }

    /// A header's value with RFC 2047 encoded-words (UTF-8, B) decoded.
    fn decoded(&self, name: &str) -> String {
        let value = self.get(name).unwrap_or_default();
        let mut out = String::new();
        let mut last_was_word = false;
        for token in value.split(' ') {
            let word = token
                .strip_prefix("=?UTF-8?B?")
                .and_then(|t| t.strip_suffix("?="));
            match word {
                Some(encoded) => {
                    let bytes = STANDARD.decode(encoded).expect("an encoded-word");
                    if !last_was_word && !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(&String::from_utf8(bytes).expect("UTF-8"));
                    last_was_word = true;
                }
                None => {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(token);
                    last_was_word = false;
                }
            }
        }
        out
    }
}

fn full_message() -> Value {
    json!({
        "id": "m1", "threadId": "t1", "labelIds": ["INBOX", "UNREAD"], "snippet": "See the report",
        "payload": {
            "mimeType": "multipart/mixed",
            "headers": [
                { "name": "From", "value": "Ada <ada@example.com>" },
                { "name": "To", "value": "me@example.com" },
                { "name": "Cc", "value": "bob@example.com" },
                { "name": "Subject", "value": "Quarterly report" },
                { "name": "Date", "value": "Mon, 12 May 2025 10:00:00 +0200" },
                { "name": "Message-ID", "value": "<CAF1@mail.example.com>" }
            ],
            "parts": [
                { "partId": "0", "mimeType": "multipart/alternative", "parts": [
                    { "partId": "0.0", "mimeType": "text/plain", "body": { "size": 28, "data": b64url("Hi,\nthe report is attached.") } },
                    { "partId": "0.1", "mimeType": "text/html", "body": { "size": 40, "data": b64url("<p>Hi, the report is attached.</p>") } }
                ]},
                { "partId": "1", "mimeType": "application/pdf", "filename": "report.pdf",
                  "headers": [{ "name": "Content-Disposition", "value": "attachment; filename=\"report.pdf\"" }],
                  "body": { "attachmentId": "ANGjdJ_1", "size": 5000 } }
            ]
        }
    })
}

#[tokio::test]
async fn the_twelve_tools_are_listed_in_gumcps_order() {
    let upstream = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gmail(root.path(), &upstream);
    let listed = client
        .request(1, "tools/list", json!({ "_meta": modern_meta() }))
        .await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "read_emails",
            "send_email",
            "update_email",
            "create_draft",
            "forward_email",
            "create_label",
            "archive_email",
            "trash_email",
            "star_email",
            "unstar_email",
            "get_attachment_details",
            "download_attachment",
        ]
    );
    let send = &tools[1]["inputSchema"];
    assert_eq!(send["required"], json!(["to", "subject", "body"]));
    for argument in [
        "to",
        "subject",
        "body",
        "cc",
        "bcc",
        "thread_id",
        "in_reply_to",
    ] {
        assert!(send["properties"][argument].is_object(), "{argument}");
    }
}

#[tokio::test]
async fn read_emails_searches_then_reads_each_message() {
    let upstream = MockServer::start().await;
    gmail_request("GET", "/users/me/messages")
        .and(query_param("q", "from:ada@example.com has:attachment"))
        .and(query_param("maxResults", "2"))
        .respond_with(answer(json!({
            "messages": [{ "id": "m1", "threadId": "t1" }, { "id": "m2", "threadId": "t2" }],
            "resultSizeEstimate": 2
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("GET", "/users/me/messages/m1")
        .and(query_param("format", "full"))
        .respond_with(answer(full_message()))
        .expect(1)
        .mount(&upstream)
        .await;
    // HTML only: the snippet stands in for the text.
    gmail_request("GET", "/users/me/messages/m2")
        .and(query_param("format", "full"))
        .respond_with(answer(json!({
            "id": "m2", "threadId": "t2", "labelIds": ["INBOX"], "snippet": "Lunch on Friday?",
            "payload": { "mimeType": "text/html",
                "headers": [{ "name": "subject", "value": "Lunch" }, { "name": "from", "value": "bob@example.com" }],
                "body": { "data": b64url("<p>Lunch on Friday?</p>") } }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("GET", "/users/me/messages")
        .and(query_param("q", "label:nothing"))
        .and(query_param("maxResults", "10"))
        .respond_with(answer(json!({ "resultSizeEstimate": 0 })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gmail(root.path(), &upstream);
    let result = call(
        &mut client,
        1,
        "read_emails",
        json!({ "query": "from:ada@example.com has:attachment", "max_results": 2 }),
    )
    .await;
    let found = &result["structuredContent"];
    assert_eq!(found["count"], 2, "{result}");
    let first = &found["emails"][0];
    assert_eq!(first["id"], "m1");
    assert_eq!(first["threadId"], "t1");
    assert_eq!(first["labelIds"], json!(["INBOX", "UNREAD"]));
    assert_eq!(first["subject"], "Quarterly report");
    assert_eq!(first["from"], "Ada <ada@example.com>");
    assert_eq!(first["to"], "me@example.com");
    assert_eq!(first["cc"], "bob@example.com");
    assert_eq!(first["date"], "Mon, 12 May 2025 10:00:00 +0200");
    assert_eq!(first["body"], "Hi,\nthe report is attached.");
    assert_eq!(first["hasAttachments"], true);
    assert_eq!(first["attachments"][0]["filename"], "report.pdf");
    assert_eq!(first["attachments"][0]["attachmentId"], "ANGjdJ_1");
    let second = &found["emails"][1];
    assert_eq!(second["subject"], "Lunch");
    assert_eq!(second["from"], "bob@example.com");
    assert_eq!(second["to"], "Unknown");
    assert_eq!(second["body"], "Lunch on Friday?");
    assert_eq!(second["hasAttachments"], false);
    assert!(text(&result).contains("Quarterly report"));

    let none = call(
        &mut client,
        2,
        "read_emails",
        json!({ "query": "label:nothing" }),
    )
    .await;
    assert_eq!(none["structuredContent"]["count"], 0);
    assert_eq!(
        none["structuredContent"]["message"],
        "No emails found matching your query."
    );
    upstream.verify().await;
}

#[tokio::test]
async fn send_email_sends_a_well_formed_message() {
    let upstream = MockServer::start().await;
    gmail_request("POST", "/users/me/messages/send")
        .and(header("content-type", "application/json"))
        .respond_with(answer(
            json!({ "id": "s1", "threadId": "s1", "labelIds": ["SENT"] }),
        ))
        .expect(3)
        .mount(&upstream)
        .await;
    // Replying to a Gmail message id: its Message-ID and References are looked up.
    gmail_request("GET", "/users/me/messages/m1")
        .and(query_param("format", "metadata"))
        .and(|request: &Request| {
            let wanted: Vec<String> = request
                .url
                .query_pairs()
                .filter(|(k, _)| k == "metadataHeaders")
                .map(|(_, v)| v.into_owned())
                .collect();
            wanted == ["Message-ID", "References"]
        })
        .respond_with(answer(json!({
            "id": "m1", "threadId": "t1",
            "payload": { "headers": [
                { "name": "Message-Id", "value": "<CAF1@mail.example.com>" },
                { "name": "References", "value": "<CAF0@mail.example.com>" }
            ]}
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gmail(root.path(), &upstream);

    let sent = call(
        &mut client,
        1,
        "send_email",
        json!({
            "to": "ada@example.com, \"Doe, Jane\" <jane@example.com>",
            "cc": "bob@example.com",
            "bcc": "José Núñez <jose@example.com>",
            "subject": "Réunion: ordre du jour ✅",
            "body": "Bonjour,\nvoici l'ordre du jour.\n\n— Léa"
        }),
    )
    .await;
    assert_eq!(sent["structuredContent"]["id"], "s1", "{sent}");
    assert_eq!(sent["structuredContent"]["labelIds"], json!(["SENT"]));

    // Plain ASCII, a reply in a thread to a Message-ID.
    call(
        &mut client,
        2,
        "send_email",
        json!({
            "to": "ada@example.com",
            "subject": "Quarterly report",
            "body": "Thanks!\n",
            "thread_id": "t9",
            "in_reply_to": "CAF9@mail.example.com"
        }),
    )
    .await;
    // A reply to a Gmail message id, thread taken from it.
    call(
        &mut client,
        3,
        "send_email",
        json!({
            "to": "ada@example.com",
            "subject": "RE: Quarterly report",
            "body": "Got it.",
            "in_reply_to": "m1"
        }),
    )
    .await;

    let sent = bodies(&upstream, "/users/me/messages/send").await;
    assert_eq!(sent.len(), 3);

    let first = Parsed::from_raw(sent[0]["raw"].as_str().unwrap());
    assert!(sent[0].get("threadId").is_none(), "{}", sent[0]);
    assert_eq!(
        first.get("to"),
        Some("ada@example.com, \"Doe, Jane\" <jane@example.com>")
    );
    assert_eq!(first.get("cc"), Some("bob@example.com"));
    assert!(first.get("bcc").unwrap().ends_with(" <jose@example.com>"));
    assert_eq!(first.decoded("bcc"), "José Núñez <jose@example.com>");
    assert!(first.get("subject").unwrap().starts_with("=?UTF-8?B?"));
    assert_eq!(first.decoded("subject"), "Réunion: ordre du jour ✅");
    assert_eq!(first.get("mime-version"), Some("1.0"));
    assert_eq!(
        first.get("content-type"),
        Some("text/plain; charset=\"utf-8\"")
    );
    assert_eq!(first.get("content-transfer-encoding"), Some("base64"));
    assert_eq!(
        first.body,
        "Bonjour,\r\nvoici l'ordre du jour.\r\n\r\n— Léa"
    );
    assert_eq!(first.get("in-reply-to"), None);
    assert_eq!(first.count("to"), 1);

    let second = Parsed::from_raw(sent[1]["raw"].as_str().unwrap());
    assert_eq!(sent[1]["threadId"], "t9");
    assert_eq!(second.get("subject"), Some("Re: Quarterly report"));
    assert_eq!(second.get("in-reply-to"), Some("<CAF9@mail.example.com>"));
    assert_eq!(second.get("references"), Some("<CAF9@mail.example.com>"));
    assert_eq!(second.get("content-transfer-encoding"), Some("7bit"));
    assert_eq!(second.body, "Thanks!\r\n");

    let third = Parsed::from_raw(sent[2]["raw"].as_str().unwrap());
    assert_eq!(sent[2]["threadId"], "t1");
    assert_eq!(third.get("subject"), Some("RE: Quarterly report"));
    assert_eq!(third.get("in-reply-to"), Some("<CAF1@mail.example.com>"));
    assert_eq!(
        third.get("references"),
        Some("<CAF0@mail.example.com> <CAF1@mail.example.com>")
    );
    upstream.verify().await;
}

#[tokio::test]
async fn line_breaks_in_header_arguments_are_refused_before_anything_is_sent() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(json!({ "id": "x" })))
        .expect(0)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gmail(root.path(), &upstream);
    let attempts = [
        (
            "send_email",
            json!({ "to": "ada@example.com\r\nBcc: spy@example.com", "subject": "s", "body": "b" }),
            "to",
        ),
        (
            "send_email",
            json!({ "to": "ada@example.com", "subject": "Hi\nBcc: spy@example.com", "body": "b" }),
            "subject",
        ),
        (
            "send_email",
            json!({ "to": "ada@example.com", "cc": "x@example.com\rBcc: spy@example.com", "subject": "s", "body": "b" }),
            "cc",
        ),
        (
            "send_email",
            json!({ "to": "ada@example.com", "subject": "s", "body": "b", "in_reply_to": "<a@b>\r\nBcc: spy@example.com" }),
            "in_reply_to",
        ),
        (
            "create_draft",
            json!({ "to": "ada@example.com", "bcc": "y@example.com\nX-Evil: 1", "subject": "s", "body": "b" }),
            "bcc",
        ),
        (
            "forward_email",
            json!({ "email_id": "m1", "to": "ada@example.com\r\n\r\nInjected body" }),
            "to",
        ),
    ];
    for (id, (tool, arguments, key)) in attempts.into_iter().enumerate() {
        let result = call_raw(&mut client, id as i64 + 1, tool, arguments).await;
        assert_eq!(result["isError"], true, "{tool}: {result}");
        assert!(
            text(&result).starts_with(&format!("{key} must be a single line")),
            "{tool}: {result}"
        );
    }
    assert!(upstream.received_requests().await.unwrap().is_empty());
    upstream.verify().await;
}

#[tokio::test]
async fn create_draft_and_forward_email_build_their_messages() {
    let upstream = MockServer::start().await;
    gmail_request("POST", "/users/me/drafts")
        .respond_with(answer(json!({
            "id": "r123", "message": { "id": "d1", "threadId": "t1", "labelIds": ["DRAFT"] }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("GET", "/users/me/messages/m1")
        .and(query_param("format", "full"))
        .respond_with(answer(full_message()))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("POST", "/users/me/messages/send")
        .respond_with(answer(
            json!({ "id": "f1", "threadId": "f1", "labelIds": ["SENT"] }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gmail(root.path(), &upstream);

    let draft = call(
        &mut client,
        1,
        "create_draft",
        json!({
            "to": "ada@example.com", "cc": "bob@example.com", "subject": "Draft plan",
            "body": "Line one\nLine two", "thread_id": "t1"
        }),
    )
    .await;
    assert_eq!(draft["structuredContent"]["id"], "r123");
    assert_eq!(
        draft["structuredContent"]["message"]["labelIds"],
        json!(["DRAFT"])
    );
    let drafts = bodies(&upstream, "/users/me/drafts").await;
    assert_eq!(drafts[0]["message"]["threadId"], "t1");
    let message = Parsed::from_raw(drafts[0]["message"]["raw"].as_str().unwrap());
    assert_eq!(message.get("to"), Some("ada@example.com"));
    assert_eq!(message.get("cc"), Some("bob@example.com"));
    assert_eq!(message.get("bcc"), None);
    assert_eq!(message.get("subject"), Some("Draft plan"));
    assert_eq!(message.body, "Line one\r\nLine two");

    let forwarded = call(
        &mut client,
        2,
        "forward_email",
        json!({ "email_id": "m1", "to": "carol@example.com, dan@example.com", "additional_text": "FYI, see below." }),
    )
    .await;
    assert_eq!(forwarded["structuredContent"]["id"], "f1");
    let sent = bodies(&upstream, "/users/me/messages/send").await;
    assert!(sent[0].get("threadId").is_none());
    let message = Parsed::from_raw(sent[0]["raw"].as_str().unwrap());
    assert_eq!(
        message.get("to"),
        Some("carol@example.com, dan@example.com")
    );
    assert_eq!(message.get("subject"), Some("Fwd: Quarterly report"));
    assert_eq!(
        message.body,
        "FYI, see below.\r\n\r\n---------- Forwarded message ---------\r\n\
         From: Ada <ada@example.com>\r\nDate: Mon, 12 May 2025 10:00:00 +0200\r\n\
         Subject: Quarterly report\r\nTo: me@example.com\r\nCc: bob@example.com\r\n\r\n\
         Hi,\r\nthe report is attached.\r\n"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn labels_are_changed_with_modify_and_created_with_their_colors() {
    let upstream = MockServer::start().await;
    let modified =
        |labels: Value| answer(json!({ "id": "m1", "threadId": "t1", "labelIds": labels }));
    gmail_request("POST", "/users/me/messages/m1/modify")
        .and(body_json(json!({ "removeLabelIds": ["INBOX"] })))
        .respond_with(modified(json!(["SENT"])))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("POST", "/users/me/messages/m1/modify")
        .and(body_json(json!({ "addLabelIds": ["STARRED"] })))
        .respond_with(modified(json!(["STARRED", "INBOX"])))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("POST", "/users/me/messages/m1/modify")
        .and(body_json(json!({ "removeLabelIds": ["STARRED"] })))
        .respond_with(modified(json!(["INBOX"])))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("POST", "/users/me/messages/m1/trash")
        .respond_with(modified(json!(["TRASH"])))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("POST", "/users/me/messages/m1/modify")
        .and(body_json(
            json!({ "addLabelIds": ["IMPORTANT", "Label_1"], "removeLabelIds": ["UNREAD"] }),
        ))
        .respond_with(modified(json!(["INBOX", "IMPORTANT", "Label_1"])))
        .expect(1)
        .mount(&upstream)
        .await;
    // By name: the labels are listed and the names turned into ids.
    gmail_request("GET", "/users/me/labels")
        .respond_with(answer(json!({ "labels": [
            { "id": "INBOX", "name": "INBOX", "type": "system" },
            { "id": "Label_42", "name": "Work/Projects", "type": "user" }
        ]})))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("POST", "/users/me/messages/m1/modify")
        .and(body_json(
            json!({ "addLabelIds": ["Label_42"], "removeLabelIds": ["INBOX"] }),
        ))
        .respond_with(modified(json!(["Label_42"])))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("POST", "/users/me/labels")
        .and(body_json(json!({
            "name": "Important Projects",
            "messageListVisibility": "show",
            "labelListVisibility": "labelShow",
            "color": { "backgroundColor": "#16a765" }
        })))
        .respond_with(answer(json!({
            "id": "Label_123", "name": "Important Projects",
            "messageListVisibility": "show", "labelListVisibility": "labelShow",
            "color": { "backgroundColor": "#16a765", "textColor": "#000000" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("POST", "/users/me/labels")
        .and(body_json(json!({
            "name": "Plain", "messageListVisibility": "show", "labelListVisibility": "labelShow"
        })))
        .respond_with(answer(json!({ "id": "Label_124", "name": "Plain" })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gmail(root.path(), &upstream);
    let id = json!({ "email_id": "m1" });

    let archived = call(&mut client, 1, "archive_email", id.clone()).await;
    assert_eq!(archived["structuredContent"]["labelIds"], json!(["SENT"]));
    let starred = call(&mut client, 2, "star_email", id.clone()).await;
    assert_eq!(
        starred["structuredContent"]["labelIds"],
        json!(["STARRED", "INBOX"])
    );
    let unstarred = call(&mut client, 3, "unstar_email", id.clone()).await;
    assert_eq!(unstarred["structuredContent"]["labelIds"], json!(["INBOX"]));
    let trashed = call(&mut client, 4, "trash_email", id.clone()).await;
    assert_eq!(trashed["structuredContent"]["labelIds"], json!(["TRASH"]));

    let updated = call(
        &mut client,
        5,
        "update_email",
        json!({ "email_id": "m1", "add_labels": ["IMPORTANT", "Label_1"], "remove_labels": ["UNREAD"] }),
    )
    .await;
    assert_eq!(
        updated["structuredContent"]["labelIds"],
        json!(["INBOX", "IMPORTANT", "Label_1"])
    );
    call(
        &mut client,
        6,
        "update_email",
        json!({ "email_id": "m1", "add_labels": ["work/projects"], "remove_labels": ["inbox"] }),
    )
    .await;
    let nothing = call_raw(
        &mut client,
        7,
        "update_email",
        json!({ "email_id": "m1", "add_labels": [] }),
    )
    .await;
    assert_eq!(nothing["isError"], true);
    assert!(
        text(&nothing).contains("No label changes specified"),
        "{nothing}"
    );

    let label = call(
        &mut client,
        8,
        "create_label",
        json!({ "name": "Important Projects", "background_color": "#16a765" }),
    )
    .await;
    assert_eq!(label["structuredContent"]["id"], "Label_123");
    call(&mut client, 9, "create_label", json!({ "name": "Plain" })).await;

    // trash sends an empty JSON object rather than no body: Google answers 411 to a POST
    // without a length, which reqwest leaves out when there is no body.
    let trash = upstream
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/users/me/messages/m1/trash")
        .unwrap();
    assert_eq!(trash.body, b"{}");
    upstream.verify().await;
}

#[tokio::test]
async fn attachments_are_listed_and_downloaded() {
    let upstream = MockServer::start().await;
    gmail_request("GET", "/users/me/messages/m1")
        .and(query_param("format", "full"))
        .respond_with(answer(full_message()))
        .expect(1)
        .mount(&upstream)
        .await;
    let content: Vec<u8> = (0u8..=255).cycle().take(5000).collect();
    gmail_request("GET", "/users/me/messages/m1/attachments/ANGjdJ_1")
        .respond_with(answer(json!({
            "attachmentId": "ANGjdJ_1", "size": 5000,
            "data": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&content)
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gmail(root.path(), &upstream);

    let details = call(
        &mut client,
        1,
        "get_attachment_details",
        json!({ "email_id": "m1" }),
    )
    .await;
    let found = &details["structuredContent"];
    assert_eq!(found["count"], 1, "{details}");
    assert_eq!(found["subject"], "Quarterly report");
    assert_eq!(
        found["attachments"][0],
        json!({
            "filename": "report.pdf", "mimeType": "application/pdf", "partId": "1",
            "attachmentId": "ANGjdJ_1", "size": 5000, "inline": false
        })
    );

    let downloaded = call(
        &mut client,
        2,
        "download_attachment",
        json!({ "email_id": "m1", "attachment_id": "ANGjdJ_1", "filename": "report.pdf" }),
    )
    .await;
    let file = &downloaded["structuredContent"];
    assert_eq!(file["filename"], "report.pdf");
    assert_eq!(file["size"], 5000);
    assert_eq!(file["encoding"], "base64");
    assert_eq!(
        STANDARD.decode(file["data"].as_str().unwrap()).unwrap(),
        content
    );
    upstream.verify().await;
}

#[tokio::test]
async fn gmails_refusals_are_tool_errors_in_its_words() {
    let upstream = MockServer::start().await;
    gmail_request("POST", "/users/me/messages/gone/trash")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": { "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("GET", "/users/me/messages/gone")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": { "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gmail(root.path(), &upstream);
    for (id, tool) in [(1, "trash_email"), (2, "get_attachment_details")] {
        let result = call_raw(&mut client, id, tool, json!({ "email_id": "gone" })).await;
        assert_eq!(result["isError"], true, "{result}");
        assert_eq!(
            text(&result),
            "gmail answered HTTP 404: Requested entity was not found.",
            "{tool}"
        );
    }
    upstream.verify().await;
}

#[tokio::test]
async fn a_401_refreshes_the_google_token_once_and_retries() {
    let upstream = MockServer::start().await;
    mount_google_refresh(&upstream, "https://www.googleapis.com/auth/gmail.modify").await;
    Mock::given(method("POST"))
        .and(path("/users/me/messages/send"))
        .and(header("authorization", "Bearer ya29.revoked"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": { "code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/users/me/messages/send"))
        .and(header("authorization", "Bearer ya29.fresh"))
        .respond_with(answer(
            json!({ "id": "s1", "threadId": "s1", "labelIds": ["SENT"] }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    google_app(root.path(), "gmail", &upstream);
    // Not expired by its clock, but refused by Gmail.
    let tokens = json!({ "access_token": "ya29.revoked", "refresh_token": "r1", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "gmail", tokens, &upstream.uri());
    let sent = call(
        &mut client,
        1,
        "send_email",
        json!({ "to": "ada@example.com", "subject": "Hi", "body": "Hello" }),
    )
    .await;
    assert_eq!(sent["structuredContent"]["id"], "s1");
    // Both attempts carried the same message.
    let raws: Vec<Value> = bodies(&upstream, "/users/me/messages/send").await;
    assert_eq!(raws.len(), 2);
    assert_eq!(raws[0], raws[1]);
    let saved = saved_credentials(root.path(), "gmail");
    assert_eq!(saved["access_token"], "ya29.fresh");
    upstream.verify().await;
}

/// The values of every `name` query parameter, in order.
fn query_values(request: &Request, name: &str) -> Vec<String> {
    request
        .url
        .query_pairs()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .collect()
}

#[tokio::test]
async fn labels_are_resources_read_as_their_recent_emails() {
    let upstream = MockServer::start().await;
    gmail_request("GET", "/users/me/labels")
        .respond_with(answer(json!({ "labels": [
            { "id": "INBOX", "name": "INBOX", "type": "system" },
            { "id": "SENT", "name": "SENT", "type": "system" },
            { "id": "Label_7", "name": "Receipts", "type": "user" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("GET", "/users/me/labels/INBOX")
        .respond_with(answer(
            json!({ "id": "INBOX", "messagesTotal": 12, "messagesUnread": 3 }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("GET", "/users/me/labels/Label_7")
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({ "error": { "message": "gone" } })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("GET", "/users/me/messages")
        .and(query_param("labelIds", "INBOX"))
        .and(query_param("maxResults", "10"))
        .respond_with(answer(
            json!({ "messages": [{ "id": "m1" }, { "id": "m2" }] }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    gmail_request("GET", "/users/me/messages")
        .and(query_param("labelIds", "Label_7"))
        .respond_with(answer(json!({ "resultSizeEstimate": 0 })))
        .expect(1)
        .mount(&upstream)
        .await;
    for (id, subject) in [("m1", "Hello"), ("m2", "Invoice")] {
        gmail_request("GET", &format!("/users/me/messages/{id}"))
            .and(query_param("format", "metadata"))
            .and(|request: &Request| {
                query_values(request, "metadataHeaders") == ["Subject", "From", "Date"]
            })
            .respond_with(answer(json!({ "id": id, "payload": { "headers": [
                { "name": "Subject", "value": subject },
                { "name": "From", "value": "Ada <ada@example.com>" },
                { "name": "Date", "value": "Mon, 2 Mar 2026 10:00:00 +0000" }
            ] } })))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    let root = tempfile::tempdir().unwrap();
    let mut client = gmail(root.path(), &upstream);
    // A legacy session this time: the capability is announced and an unknown URI is -32002.
    let initialized = client.initialize("2025-06-18", json!({})).await;
    assert!(
        initialized["result"]["capabilities"]["resources"].is_object(),
        "{initialized}"
    );

    let listed = client.request(1, "resources/list", json!({})).await;
    assert_eq!(
        listed["result"]["resources"],
        json!([
            { "uri": "gmail://label/INBOX", "name": "INBOX", "description": "INBOX (3 unread of 12 total)", "mimeType": "application/gmail.label" },
            { "uri": "gmail://label/Label_7", "name": "Receipts", "description": "Receipts", "mimeType": "application/gmail.label" }
        ]),
        "{listed}"
    );

    let inbox = client
        .request(2, "resources/read", json!({ "uri": "gmail://label/INBOX" }))
        .await;
    let contents = &inbox["result"]["contents"][0];
    assert_eq!(contents["mimeType"], "text/plain", "{inbox}");
    assert_eq!(
        contents["text"],
        "ID: gmail://message/m1\nSubject: Hello\nFrom: Ada <ada@example.com>\nDate: Mon, 2 Mar 2026 10:00:00 +0000\n---\n\n\
         ID: gmail://message/m2\nSubject: Invoice\nFrom: Ada <ada@example.com>\nDate: Mon, 2 Mar 2026 10:00:00 +0000\n---\n"
    );
    let empty = client
        .request(
            3,
            "resources/read",
            json!({ "uri": "gmail://label/Label_7" }),
        )
        .await;
    assert_eq!(
        empty["result"]["contents"][0]["text"], "No messages in this label",
        "{empty}"
    );

    let unknown = client
        .request(4, "resources/read", json!({ "uri": "gmail://message/m1" }))
        .await;
    assert_eq!(unknown["error"]["code"], -32002, "{unknown}");
    assert_eq!(unknown["error"]["data"]["uri"], "gmail://message/m1");
}

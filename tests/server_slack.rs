//! slack against a mock of its Web API: every tool calls the Slack method with the verb, token,
//! query or JSON body (`application/json; charset=utf-8`) Slack expects; channel names, user
//! names and emails are turned into ids first; Slack's `ok: false` becomes a tool error that
//! carries Slack's error code.

mod common;

use common::{call_tool as call_raw, call_tool_ok, modern_meta, shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "xoxp-alice";

fn slack(root: &std::path::Path, upstream: &MockServer) -> StdioClient {
    let tokens = json!({ "access_token": TOKEN, "authed_user_id": "U0ALICE" });
    shipped_server(root, "slack", tokens, &upstream.uri())
}

/// A read method as Slack checks it: GET, the method's path, the user's token.
fn read(slack_method: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(format!("/{slack_method}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
}

/// A write method: POST with a JSON body that names its charset, and exactly `body`.
fn write(slack_method: &str, body: Value) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(format!("/{slack_method}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json; charset=utf-8"))
        .and(body_json(body))
}

fn ok(answer: Value) -> ResponseTemplate {
    let mut answer = answer;
    answer["ok"] = json!(true);
    ResponseTemplate::new(200).set_body_json(answer)
}

fn refused(error: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": error }))
}

/// A successful call's structured content.
async fn call(client: &mut StdioClient, id: i64, tool: &str, arguments: Value) -> Value {
    call_tool_ok(client, id, tool, arguments).await["structuredContent"].clone()
}

async fn failed(client: &mut StdioClient, id: i64, tool: &str, arguments: Value) -> String {
    let result = call_raw(client, id, tool, arguments).await;
    assert_eq!(result["isError"], true, "{tool}: {result}");
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn tools_list_is_gumcps_eighteen_tools_in_gumcps_order() {
    let upstream = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let mut client = slack(root.path(), &upstream);
    let listed = client
        .request(1, "tools/list", json!({ "_meta": modern_meta() }))
        .await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "read_messages",
            "send_message",
            "create_canvas",
            "add_user_to_channel",
            "react_to_message",
            "delete_message",
            "get_message_thread",
            "pin_message",
            "unpin_message",
            "get_user_presence",
            "remove_from_channel",
            "list_pinned_items",
            "create_channel",
            "update_channel_topic",
            "update_channel_purpose",
            "archive_channel",
            "unarchive_channel",
            "list_users_in_channel",
        ]
    );
}

#[tokio::test]
async fn reading_tools_resolve_names_and_add_authors() {
    let upstream = MockServer::start().await;
    // "#general" is on the second page of conversations.list; looked up once, then remembered.
    read("conversations.list")
        .and(query_param("types", "public_channel,private_channel"))
        .and(query_param("limit", "200"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ok(json!({
            "channels": [{ "id": "C0RANDOM", "name": "random" }],
            "response_metadata": { "next_cursor": "page2" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("conversations.list")
        .and(query_param("cursor", "page2"))
        .respond_with(ok(json!({
            "channels": [{ "id": "C0GENERAL", "name": "general" }],
            "response_metadata": { "next_cursor": "" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("conversations.history")
        .and(query_param("channel", "C0GENERAL"))
        .and(query_param("limit", "2"))
        .and(query_param("oldest", "1700000000.000100"))
        .and(query_param("latest", "1700000999.000100"))
        .respond_with(ok(json!({
            "messages": [
                { "type": "message", "user": "U0ADA", "ts": "1700000002.000100", "text": "second" },
                { "type": "message", "bot_id": "B1", "ts": "1700000001.000100", "text": "first" }
            ],
            "has_more": false
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("users.info")
        .and(query_param("user", "U0ADA"))
        .respond_with(ok(json!({
            "user": { "id": "U0ADA", "name": "ada", "real_name": "Ada Lovelace", "profile": { "display_name": "ada" } }
        })))
        .expect(2)
        .mount(&upstream)
        .await;
    read("conversations.replies")
        .and(query_param("channel", "C0GENERAL"))
        .and(query_param("ts", "1700000002.000100"))
        .and(query_param("limit", "20"))
        .respond_with(ok(json!({
            "messages": [
                { "type": "message", "user": "U0ADA", "ts": "1700000002.000100", "text": "parent", "thread_ts": "1700000002.000100" },
                { "type": "message", "user": "U0GONE", "ts": "1700000003.000100", "text": "reply", "thread_ts": "1700000002.000100" }
            ]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("users.info")
        .and(query_param("user", "U0GONE"))
        .respond_with(refused("user_not_found"))
        .expect(1)
        .mount(&upstream)
        .await;
    // Members on two pages; each one's details and presence.
    read("conversations.members")
        .and(query_param("channel", "C0GENERAL"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ok(json!({
            "members": ["U0BOB"],
            "response_metadata": { "next_cursor": "m2" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("conversations.members")
        .and(query_param("channel", "C0GENERAL"))
        .and(query_param("cursor", "m2"))
        .respond_with(ok(
            json!({ "members": ["U0CAT"], "response_metadata": { "next_cursor": "" } }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    for (id, name, admin) in [("U0BOB", "bob", true), ("U0CAT", "cat", false)] {
        read("users.info")
            .and(query_param("user", id))
            .respond_with(ok(json!({
                "user": {
                    "id": id, "name": name, "real_name": name.to_uppercase(), "is_admin": admin,
                    "is_bot": false, "updated": 1700000000,
                    "profile": { "display_name": name, "email": format!("{name}@example.com") }
                }
            })))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    read("users.getPresence")
        .and(query_param("user", "U0BOB"))
        .respond_with(ok(json!({ "presence": "active", "online": true })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("users.getPresence")
        .and(query_param("user", "U0CAT"))
        .respond_with(refused("ratelimited"))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = slack(root.path(), &upstream);

    let read_back = call(
        &mut client,
        1,
        "read_messages",
        json!({
            "channel": "#general", "limit": 2,
            "start_timestamp": "1700000000.000100", "end_timestamp": "1700000999.000100"
        }),
    )
    .await;
    let messages = read_back["items"].as_array().unwrap();
    // Chronological: Slack's newest-first answer is turned around.
    assert_eq!(messages[0]["text"], "first");
    assert!(messages[0].get("user_name").is_none());
    assert_eq!(messages[1]["text"], "second");
    assert_eq!(messages[1]["user_name"], "Ada Lovelace");
    assert_eq!(messages[1]["user_profile"]["display_name"], "ada");

    let thread = call(
        &mut client,
        2,
        "get_message_thread",
        json!({ "channel": "#general", "thread_ts": "1700000002.000100" }),
    )
    .await;
    let thread = thread["items"].as_array().unwrap();
    assert_eq!(thread[0]["text"], "parent");
    assert_eq!(thread[0]["user_name"], "Ada Lovelace");
    assert_eq!(thread[1]["text"], "reply");
    assert_eq!(thread[1]["user_name"], "Unknown");

    let members = call(
        &mut client,
        3,
        "list_users_in_channel",
        json!({ "channel": "#general" }),
    )
    .await;
    assert_eq!(
        members["items"],
        json!([
            {
                "id": "U0BOB", "name": "bob", "real_name": "BOB", "display_name": "bob",
                "email": "bob@example.com", "is_admin": true, "is_owner": false, "is_bot": false,
                "updated": 1700000000, "presence": "active"
            },
            {
                "id": "U0CAT", "name": "cat", "real_name": "CAT", "display_name": "cat",
                "email": "cat@example.com", "is_admin": false, "is_owner": false, "is_bot": false,
                "updated": 1700000000, "presence": null
            }
        ])
    );
    upstream.verify().await;
}

#[tokio::test]
async fn writing_tools_send_what_slack_expects() {
    let upstream = MockServer::start().await;
    let message =
        json!({ "type": "message", "user": "U0ALICE", "ts": "1700000100.000200", "text": "hello" });
    write(
        "chat.postMessage",
        json!({ "channel": "C0GENERAL", "text": "hello", "thread_ts": "1700000002.000100" }),
    )
    .respond_with(ok(
        json!({ "channel": "C0GENERAL", "ts": "1700000100.000200", "message": message }),
    ))
    .expect(1)
    .mount(&upstream)
    .await;
    // "@ada": her id from users.list (by display name), then the direct message is opened.
    read("users.list")
        .and(query_param("limit", "200"))
        .respond_with(ok(json!({
            "members": [
                { "id": "U0BOB", "name": "bob", "real_name": "Bob" },
                { "id": "U0ADA", "name": "ada.l", "real_name": "Ada Lovelace", "profile": { "display_name": "ada" } }
            ],
            "response_metadata": { "next_cursor": "" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    write("conversations.open", json!({ "users": "U0ADA" }))
        .respond_with(ok(json!({ "channel": { "id": "D0ADA" } })))
        .expect(1)
        .mount(&upstream)
        .await;
    write(
        "chat.postMessage",
        json!({ "channel": "D0ADA", "text": "psst" }),
    )
    .respond_with(ok(json!({ "channel": "D0ADA", "ts": "1700000101.000200" })))
    .expect(1)
    .mount(&upstream)
    .await;
    let section = json!({ "type": "section", "text": { "type": "mrkdwn", "text": "*Plan*" } });
    write(
        "chat.postMessage",
        json!({
            "channel": "C0GENERAL",
            "text": "Roadmap",
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": "Roadmap" } },
                section
            ]
        }),
    )
    .respond_with(ok(
        json!({ "channel": "C0GENERAL", "ts": "1700000102.000200" }),
    ))
    .expect(1)
    .mount(&upstream)
    .await;
    read("users.lookupByEmail")
        .and(query_param("email", "bob@example.com"))
        .respond_with(ok(json!({ "user": { "id": "U0BOB", "name": "bob" } })))
        .expect(1)
        .mount(&upstream)
        .await;
    write(
        "conversations.invite",
        json!({ "channel": "C0GENERAL", "users": "U0BOB" }),
    )
    .respond_with(ok(
        json!({ "channel": { "id": "C0GENERAL", "name": "general" } }),
    ))
    .expect(1)
    .mount(&upstream)
    .await;
    write(
        "reactions.add",
        json!({ "channel": "C0GENERAL", "timestamp": "1700000100.000200", "name": "thumbsup" }),
    )
    .respond_with(ok(json!({})))
    .expect(1)
    .mount(&upstream)
    .await;
    write(
        "chat.delete",
        json!({ "channel": "C0GENERAL", "ts": "1700000100.000200" }),
    )
    .respond_with(ok(
        json!({ "channel": "C0GENERAL", "ts": "1700000100.000200" }),
    ))
    .expect(1)
    .mount(&upstream)
    .await;
    for pins in ["pins.add", "pins.remove"] {
        write(
            pins,
            json!({ "channel": "C0GENERAL", "timestamp": "1700000100.000200" }),
        )
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&upstream)
        .await;
    }
    read("users.getPresence")
        .and(query_param("user", "U0BOB"))
        .respond_with(ok(json!({ "presence": "away", "online": false })))
        .expect(1)
        .mount(&upstream)
        .await;
    write(
        "conversations.kick",
        json!({ "channel": "C0GENERAL", "user": "U0CAT" }),
    )
    .respond_with(ok(json!({ "errors": {} })))
    .expect(2)
    .mount(&upstream)
    .await;
    read("pins.list")
        .and(query_param("channel", "C0GENERAL"))
        .respond_with(ok(json!({
            "items": [{ "type": "message", "channel": "C0GENERAL", "message": { "ts": "1700000100.000200", "text": "hello" } }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    write(
        "conversations.create",
        json!({ "name": "launch", "is_private": false }),
    )
    .respond_with(ok(
        json!({ "channel": { "id": "C0LAUNCH", "name": "launch" } }),
    ))
    .expect(1)
    .mount(&upstream)
    .await;
    write(
        "conversations.create",
        json!({ "name": "secret", "is_private": true, "team_id": "T0ACME" }),
    )
    .respond_with(ok(
        json!({ "channel": { "id": "G0SECRET", "name": "secret", "is_private": true } }),
    ))
    .expect(1)
    .mount(&upstream)
    .await;
    write(
        "conversations.setTopic",
        json!({ "channel": "C0GENERAL", "topic": "Launch week" }),
    )
    .respond_with(ok(
        json!({ "channel": { "id": "C0GENERAL", "topic": { "value": "Launch week" } } }),
    ))
    .expect(1)
    .mount(&upstream)
    .await;
    write(
        "conversations.setPurpose",
        json!({ "channel": "C0GENERAL", "purpose": "Everything" }),
    )
    .respond_with(ok(
        json!({ "channel": { "id": "C0GENERAL", "purpose": { "value": "Everything" } } }),
    ))
    .expect(1)
    .mount(&upstream)
    .await;
    for change in ["conversations.archive", "conversations.unarchive"] {
        write(change, json!({ "channel": "C0OLD" }))
            .respond_with(ok(json!({})))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    let root = tempfile::tempdir().unwrap();
    let mut client = slack(root.path(), &upstream);

    let sent = call(
        &mut client,
        1,
        "send_message",
        json!({ "channel": "C0GENERAL", "text": "hello", "thread_ts": "1700000002.000100" }),
    )
    .await;
    assert_eq!(sent["ts"], "1700000100.000200");
    assert_eq!(sent["message"]["text"], "hello");
    let direct = call(
        &mut client,
        2,
        "send_message",
        json!({ "channel": "@ada", "text": "psst" }),
    )
    .await;
    assert_eq!(direct["channel"], "D0ADA");
    let canvas = call(
        &mut client,
        3,
        "create_canvas",
        json!({ "channel": "C0GENERAL", "title": "Roadmap", "blocks": [section] }),
    )
    .await;
    assert_eq!(canvas["ts"], "1700000102.000200");
    let invited = call(
        &mut client,
        4,
        "add_user_to_channel",
        json!({ "channel": "C0GENERAL", "user": "bob@example.com" }),
    )
    .await;
    assert_eq!(invited["channel"]["name"], "general");
    let reacted = call(
        &mut client,
        5,
        "react_to_message",
        json!({ "channel": "C0GENERAL", "timestamp": "1700000100.000200", "reaction": ":thumbsup:" }),
    )
    .await;
    assert_eq!(reacted["ok"], true);
    let deleted = call(
        &mut client,
        6,
        "delete_message",
        json!({ "channel": "C0GENERAL", "timestamp": "1700000100.000200" }),
    )
    .await;
    assert_eq!(deleted["ts"], "1700000100.000200");
    for (id, tool) in [(7, "pin_message"), (8, "unpin_message")] {
        let pinned = call(
            &mut client,
            id,
            tool,
            json!({ "channel": "C0GENERAL", "timestamp": "1700000100.000200" }),
        )
        .await;
        assert_eq!(pinned["ok"], true, "{tool}");
    }
    // The email was looked up once (add_user_to_channel) and is remembered.
    let presence = call(
        &mut client,
        9,
        "get_user_presence",
        json!({ "user": "bob@example.com" }),
    )
    .await;
    assert_eq!(presence["presence"], "away");
    // guMCP's argument names, and the ones its schema requires: both reach conversations.kick.
    for (id, arguments) in [
        (10, json!({ "channel_id": "C0GENERAL", "user_id": "U0CAT" })),
        (11, json!({ "channel": "C0GENERAL", "user": "U0CAT" })),
    ] {
        let removed = call(&mut client, id, "remove_from_channel", arguments).await;
        assert_eq!(removed["ok"], true);
    }
    let pinned = call(
        &mut client,
        12,
        "list_pinned_items",
        json!({ "channel": "C0GENERAL" }),
    )
    .await;
    assert_eq!(pinned["items"][0]["message"]["text"], "hello");
    let created = call(
        &mut client,
        13,
        "create_channel",
        json!({ "name": "launch" }),
    )
    .await;
    assert_eq!(created["channel"]["id"], "C0LAUNCH");
    let private = call(
        &mut client,
        14,
        "create_channel",
        json!({ "name": "secret", "is_private": true, "team_id": "T0ACME" }),
    )
    .await;
    assert_eq!(private["channel"]["id"], "G0SECRET");
    let topic = call(
        &mut client,
        15,
        "update_channel_topic",
        json!({ "channel": "C0GENERAL", "topic": "Launch week" }),
    )
    .await;
    assert_eq!(topic["channel"]["topic"]["value"], "Launch week");
    let purpose = call(
        &mut client,
        16,
        "update_channel_purpose",
        json!({ "channel": "C0GENERAL", "purpose": "Everything" }),
    )
    .await;
    assert_eq!(purpose["channel"]["purpose"]["value"], "Everything");
    for (id, tool) in [(17, "archive_channel"), (18, "unarchive_channel")] {
        let changed = call(&mut client, id, tool, json!({ "channel": "C0OLD" })).await;
        assert_eq!(changed["ok"], true, "{tool}");
    }
    upstream.verify().await;
}

#[tokio::test]
async fn slack_refusals_and_bad_arguments_are_tool_errors() {
    let upstream = MockServer::start().await;
    // ok:false in an HTTP 200 answer, for a declared tool and for a coded one.
    write("conversations.archive", json!({ "channel": "C0NOPE" }))
        .respond_with(refused("channel_not_found"))
        .expect(1)
        .mount(&upstream)
        .await;
    read("conversations.history")
        .and(query_param("channel", "C0SECRET"))
        .respond_with(refused("not_in_channel"))
        .expect(1)
        .mount(&upstream)
        .await;
    read("conversations.list")
        .respond_with(ok(json!({
            "channels": [{ "id": "C0GENERAL", "name": "general" }],
            "response_metadata": { "next_cursor": "" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("users.lookupByEmail")
        .respond_with(refused("users_not_found"))
        .expect(1)
        .mount(&upstream)
        .await;
    // A revoked token: Slack says so with ok:false too.
    write(
        "chat.postMessage",
        json!({ "channel": "C0GENERAL", "text": "hi" }),
    )
    .respond_with(refused("token_revoked"))
    .expect(1)
    .mount(&upstream)
    .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = slack(root.path(), &upstream);

    let archived = failed(
        &mut client,
        1,
        "archive_channel",
        json!({ "channel": "C0NOPE" }),
    )
    .await;
    assert!(archived.contains("channel_not_found"), "{archived}");
    let history = failed(
        &mut client,
        2,
        "read_messages",
        json!({ "channel": "C0SECRET" }),
    )
    .await;
    assert!(history.contains("not_in_channel"), "{history}");
    assert!(history.contains("conversations.history"), "{history}");
    let unknown = failed(
        &mut client,
        3,
        "pin_message",
        json!({ "channel": "#nowhere", "timestamp": "1.2" }),
    )
    .await;
    assert!(unknown.contains("#nowhere"), "{unknown}");
    let nobody = failed(
        &mut client,
        4,
        "get_user_presence",
        json!({ "user": "nobody@example.com" }),
    )
    .await;
    assert!(nobody.contains("users_not_found"), "{nobody}");
    let revoked = failed(
        &mut client,
        5,
        "send_message",
        json!({ "channel": "C0GENERAL", "text": "hi" }),
    )
    .await;
    assert!(revoked.contains("token_revoked"), "{revoked}");
    // Missing required arguments never reach Slack.
    let no_text = failed(
        &mut client,
        6,
        "send_message",
        json!({ "channel": "C0GENERAL" }),
    )
    .await;
    assert!(no_text.contains("text"), "{no_text}");
    let no_user = failed(
        &mut client,
        7,
        "remove_from_channel",
        json!({ "channel_id": "C0GENERAL" }),
    )
    .await;
    assert!(no_user.contains("user_id"), "{no_user}");
    let no_thread = failed(
        &mut client,
        8,
        "get_message_thread",
        json!({ "channel": "C0GENERAL" }),
    )
    .await;
    assert!(no_thread.contains("thread_ts"), "{no_thread}");
    upstream.verify().await;
}

#[tokio::test]
async fn channels_are_resources_read_as_their_latest_messages() {
    let upstream = MockServer::start().await;
    read("conversations.list")
        .and(query_param("types", "public_channel,private_channel"))
        .and(query_param("limit", "200"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ok(json!({
            "channels": [{ "id": "C1", "name": "general", "is_private": false }],
            "response_metadata": { "next_cursor": "page2" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("conversations.list")
        .and(query_param("cursor", "page2"))
        .respond_with(ok(json!({
            "channels": [{ "id": "G2", "name": "ops", "is_private": true }],
            "response_metadata": { "next_cursor": "" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("conversations.history")
        .and(query_param("channel", "C1"))
        .and(query_param("limit", "50"))
        .respond_with(ok(json!({ "messages": [
            { "ts": "2.0", "text": "second", "user": "U1" },
            { "ts": "1.0", "text": "first", "user": "U1" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    read("users.info")
        .and(query_param("user", "U1"))
        .respond_with(ok(
            json!({ "user": { "id": "U1", "name": "ada", "real_name": "Ada L", "profile": {} } }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = slack(root.path(), &upstream);

    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    assert_eq!(
        listed["result"]["resources"],
        json!([
            { "uri": "slack://channel/C1", "name": "#general", "description": "Public Slack channel: #general", "mimeType": "text/plain" },
            { "uri": "slack://channel/G2", "name": "#ops", "description": "Private Slack channel: #ops", "mimeType": "text/plain" }
        ]),
        "{listed}"
    );

    let read_reply = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "slack://channel/C1", "_meta": modern_meta() }),
        )
        .await;
    let contents = &read_reply["result"]["contents"][0];
    assert_eq!(contents["uri"], "slack://channel/C1", "{read_reply}");
    assert_eq!(contents["mimeType"], "application/json");
    let messages: Value = serde_json::from_str(contents["text"].as_str().unwrap()).unwrap();
    assert_eq!(messages[0]["text"], "first", "oldest first: {messages}");
    assert_eq!(messages[1]["user_name"], "Ada L");

    for (id, uri) in [(3, "slack://channel/"), (4, "slack://user/U1")] {
        let unknown = client
            .request(
                id,
                "resources/read",
                json!({ "uri": uri, "_meta": modern_meta() }),
            )
            .await;
        assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
        assert!(
            unknown["error"]["message"].as_str().unwrap().contains(uri),
            "{unknown}"
        );
    }
}

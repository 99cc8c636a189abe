//! teams: Microsoft Teams through Microsoft Graph (v1.0), with guMCP's fifteen tools, names and
//! arguments, on the Microsoft identity platform provider. Eleven tools are one request each,
//! declared in `server.toml` and handed to the runtime's `http` engine; four are code:
//!
//! - create_team makes a Microsoft 365 group, then its team (Graph's way for a delegated user).
//! - add_team_member sends the roles Graph takes (`owner`, or none for a member: guMCP sent
//!   `member`, which Graph refuses).
//! - remove_team_member finds the membership of the user named (by id or email) first.
//! - create_meeting names each attendee by their address (`upn`), as Graph's participants are.
//!
//! guMCP's resources are code too: each channel of the user's teams as
//! `teams://channel/{team_id}_{channel_id}`, read as its messages, oldest first. The runtime's
//! `Api` does the credentials, the refresh-and-retry on 401 and the wording of upstream
//! failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, text_resource, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const CHANNEL_URI: &str = "teams://channel/";
/// Teams whose channels are listed as resources (one request each).
const LISTED_TEAMS: usize = 20;

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 15] = [
    "create_team",
    "get_teams",
    "get_team_details",
    "get_team_channels",
    "create_team_channel",
    "get_chats",
    "get_chat_messages",
    "send_chat_message",
    "get_team_channel_messages",
    "send_team_channel_message",
    "post_message_reply",
    "get_team_members",
    "add_team_member",
    "remove_team_member",
    "create_meeting",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Teams {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Teams {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "create_team",
            "Create a new Microsoft Teams team",
            json!({
                "type": "object",
                "properties": {
                    "name": string("The name of the team to create (required)"),
                    "description": string("Optional description for the team")
                },
                "required": ["name"]
            }),
        ),
        tool(
            "add_team_member",
            "Add a user to a team",
            json!({
                "type": "object",
                "properties": {
                    "team_id": string("The ID of the team to add a member to"),
                    "user_id": string("The ID of the user to add to the team or email of the user to add"),
                    "roles": {
                        "type": "array",
                        "description": "The roles assigned to the user (e.g., 'owner', 'member')",
                        "items": { "type": "string", "enum": ["owner", "member"] }
                    }
                },
                "required": ["team_id", "user_id"]
            }),
        ),
        tool(
            "remove_team_member",
            "Remove a user from a team",
            json!({
                "type": "object",
                "properties": {
                    "team_id": string("The ID of the team to remove a member from"),
                    "user_id": string("The ID or email of the user to remove from the team")
                },
                "required": ["team_id", "user_id"]
            }),
        ),
        tool(
            "create_meeting",
            "Create a new online meeting in Microsoft Teams",
            json!({
                "type": "object",
                "properties": {
                    "subject": string("The subject of the meeting (required)"),
                    "start_time": string("Start time of the meeting in ISO 8601 format (e.g., '2025-04-20T10:00:00Z') (required)"),
                    "end_time": string("End time of the meeting in ISO 8601 format (e.g., '2025-04-20T11:00:00Z') (required)"),
                    "attendees": { "type": "array", "description": "List of email addresses of attendees", "items": { "type": "string" } },
                    "content": string("The agenda or content of the meeting")
                },
                "required": ["subject", "start_time", "end_time"]
            }),
        ),
    ]
}

fn field<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn values(answer: &Value) -> Vec<Value> {
    answer
        .get("value")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A group's mail nickname from a team's name: its ASCII letters and digits, lowercased
/// (Graph refuses spaces and most punctuation there).
fn mail_nickname(name: &str) -> String {
    let nickname: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if nickname.is_empty() {
        "team".to_owned()
    } else {
        nickname
    }
}

/// Whether a team membership is the user's, named by id or email (case aside).
fn is_member(member: &Value, user: &str) -> bool {
    field(member, "userId") == user || field(member, "email").eq_ignore_ascii_case(user)
}

/// A channel's messages as guMCP reads them: `[time] sender: content`, oldest first.
fn channel_text(messages: &[Value]) -> String {
    let lines: Vec<String> = messages
        .iter()
        .rev()
        .map(|message| {
            let sender = message
                .pointer("/from/user/displayName")
                .and_then(Value::as_str)
                .unwrap_or("Unknown");
            format!(
                "[{}] {sender}: {}",
                field(message, "createdDateTime"),
                message
                    .pointer("/body/content")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )
        })
        .collect();
    lines.join("\n")
}

impl Teams {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn create_team(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let name = required_text(arguments, "name")?;
        let description = text(arguments, "description").unwrap_or("Team created via Graph API");
        let api = self.api(ctx);
        let group = json!({
            "displayName": name,
            "description": description,
            "groupTypes": ["Unified"],
            "mailEnabled": true,
            "mailNickname": mail_nickname(name),
            "securityEnabled": false,
        });
        let group = api.json(Method::POST, "/groups", &[], Some(&group)).await?;
        let group_id = field(&group, "id");
        let settings = json!({
            "memberSettings": { "allowCreateUpdateChannels": true },
            "messagingSettings": { "allowUserEditMessages": true, "allowUserDeleteMessages": true },
            "funSettings": { "allowGiphy": true, "giphyContentRating": "moderate" },
        });
        let path = format!("/groups/{}/team", id_segment(group_id)?);
        let team = api.json(Method::PUT, &path, &[], Some(&settings)).await?;
        Ok(json!({
            "groupId": group_id,
            "teamName": name,
            "status": "Team creation initiated successfully",
            "team": team,
        }))
    }

    async fn add_team_member(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let team = id_segment(required_text(arguments, "team_id")?)?;
        let user = required_text(arguments, "user_id")?;
        let owner = arguments
            .get("roles")
            .and_then(Value::as_array)
            .is_some_and(|roles| roles.iter().any(|role| role == "owner"));
        let body = json!({
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "roles": if owner { json!(["owner"]) } else { json!([]) },
            "user@odata.bind": format!("https://graph.microsoft.com/v1.0/users('{}')", user.replace('\'', "''")),
        });
        self.api(ctx)
            .json(
                Method::POST,
                &format!("/teams/{team}/members"),
                &[],
                Some(&body),
            )
            .await
    }

    async fn remove_team_member(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let team_id = required_text(arguments, "team_id")?;
        let team = id_segment(team_id)?;
        let user = required_text(arguments, "user_id")?;
        let api = self.api(ctx);
        let members = api
            .json(Method::GET, &format!("/teams/{team}/members"), &[], None)
            .await?;
        let Some(member) = values(&members)
            .into_iter()
            .find(|member| is_member(member, user))
        else {
            return Err(format!("User {user} is not a member of team {team_id}"));
        };
        let path = format!(
            "/teams/{team}/members/{}",
            id_segment(field(&member, "id"))?
        );
        api.json(Method::DELETE, &path, &[], None).await?;
        Ok(json!(format!(
            "Successfully removed user {user} from team {team_id}"
        )))
    }

    async fn create_meeting(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let subject = required_text(arguments, "subject")?;
        let attendees: Vec<Value> = arguments
            .get("attendees")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|email| json!({ "upn": email, "role": "attendee" }))
            .collect();
        let mut body = json!({
            "subject": subject,
            "startDateTime": required_text(arguments, "start_time")?,
            "endDateTime": required_text(arguments, "end_time")?,
            "participants": { "attendees": attendees },
        });
        if let Some(content) = text(arguments, "content").filter(|c| !c.is_empty()) {
            body["agenda"] = json!(content);
        }
        let meeting = self
            .api(ctx)
            .json(Method::POST, "/me/onlineMeetings", &[], Some(&body))
            .await?;
        Ok(json!({
            "id": meeting.get("id"),
            "subject": subject,
            "startDateTime": body["startDateTime"],
            "endDateTime": body["endDateTime"],
            "joinUrl": meeting.get("joinUrl").or_else(|| meeting.get("joinWebUrl")),
            "fullDetails": meeting,
        }))
    }

    /// guMCP's resources: every channel of the user's teams (the first 20 teams).
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let api = self.api(ctx);
        let teams = api.json(Method::GET, "/me/joinedTeams", &[], None).await?;
        let mut resources = Vec::new();
        for team in values(&teams).iter().take(LISTED_TEAMS) {
            let (team_id, team_name) = (field(team, "id"), field(team, "displayName"));
            if team_id.is_empty() {
                continue;
            }
            let path = format!("/teams/{}/channels", id_segment(team_id)?);
            let channels = api.json(Method::GET, &path, &[], None).await?;
            for channel in values(&channels) {
                let name = format!("#{team_name}/{}", field(&channel, "displayName"));
                let kind = if field(&channel, "membershipType") == "private" {
                    "Private"
                } else {
                    "Public"
                };
                resources.push(
                    Resource::new(
                        format!("{CHANNEL_URI}{team_id}_{}", field(&channel, "id")),
                        name.clone(),
                    )
                    .with_description(format!("{kind} Teams channel: {name}"))
                    .with_mime_type("text/plain"),
                );
            }
        }
        Ok(resources)
    }

    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<ReadResourceResult, CallError> {
        let not_found = || CallError::ResourceNotFound(uri.into());
        let (team, channel) = uri
            .strip_prefix(CHANNEL_URI)
            .and_then(|ids| ids.split_once('_'))
            .ok_or_else(not_found)?;
        let path = format!(
            "/teams/{}/channels/{}/messages",
            id_segment(team).map_err(|_| not_found())?,
            id_segment(channel).map_err(|_| not_found())?
        );
        let messages = self
            .api(ctx)
            .json(Method::GET, &path, &[], None)
            .await
            .map_err(McpError::internal)?;
        Ok(text_resource(
            uri,
            channel_text(&values(&messages)),
            "text/plain",
        ))
    }
}

impl McpServer for Teams {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
    }

    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        async move { self.resources(ctx).await.map_err(McpError::internal) }.boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        self.read(uri, ctx).boxed()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        if self.declared.declares(name) {
            return self.declared.call_tool(name, arguments, ctx);
        }
        Box::pin(async move {
            let outcome = match name {
                "create_team" => self.create_team(&arguments, ctx).await,
                "add_team_member" => self.add_team_member(&arguments, ctx).await,
                "remove_team_member" => self.remove_team_member(&arguments, ctx).await,
                "create_meeting" => self.create_meeting(&arguments, ctx).await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_keep_ascii_letters_and_digits() {
        assert_eq!(mail_nickname("Sales Team 2025!"), "salesteam2025");
        assert_eq!(mail_nickname("Équipe"), "quipe");
        assert_eq!(mail_nickname("???"), "team");
    }

    #[test]
    fn channel_messages_read_oldest_first() {
        let messages = vec![
            json!({ "createdDateTime": "t2", "from": { "user": { "displayName": "Bo" } }, "body": { "content": "second" } }),
            json!({ "createdDateTime": "t1", "from": null, "body": { "content": "first" } }),
        ];
        assert_eq!(
            channel_text(&messages),
            "[t1] Unknown: first\n[t2] Bo: second"
        );
    }
}

//! conformance-fixtures: the fixtures of `@modelcontextprotocol/conformance` (tools, resources,
//! templates, prompts, with the exact texts and shapes its scenarios check), and the runtime's
//! "everything" demo. Each tool body serves both eras through `RequestContext`: a legacy session
//! gets real server→client requests, 2026-07-28 gets `InputRequiredResult`s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock,
    GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, ReadResourceResult,
    Resource, ResourceContents, ResourceTemplate, Role, Tool,
};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::protocol::meta::LogLevel;
use crate::servers::{
    json_object, CallError, Features, McpServer, RequestContext, ServerEvent, ServerEvents,
    ServerFuture, ServerInit, TaskSupport,
};

/// A 1×1 red PNG.
const RED_PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// A WAV of eight silent 16-bit samples at 8 kHz.
const SILENT_WAV: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";
const STEP: Duration = Duration::from_millis(50);

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Fixtures {
        events: init.events,
        extra_tool: AtomicBool::new(false),
        extra_prompt: AtomicBool::new(false),
        stopped_early: Mutex::default(),
    })
}

struct Fixtures {
    events: ServerEvents,
    /// Flipped by `test_trigger_tool_change` / `test_trigger_prompt_change`.
    extra_tool: AtomicBool,
    extra_prompt: AtomicBool,
    /// Labels of `slow_compute` runs stopped before they finished (a cancelled task), for
    /// `slow_compute_stopped` to show.
    stopped_early: Mutex<Vec<String>>,
}

/// Notes a `slow_compute` run that is dropped before it finished.
struct StopWatch<'a> {
    label: String,
    finished: bool,
    stopped: &'a Mutex<Vec<String>>,
}

impl Drop for StopWatch<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
            // Bounded: a test server, but still one instance per user.
            if stopped.len() >= 100 {
                stopped.remove(0);
            }
            stopped.push(std::mem::take(&mut self.label));
        }
    }
}

fn no_arguments() -> Arc<JsonObject> {
    json_object(json!({"type": "object", "properties": {}}))
}

fn tool(name: &'static str, description: &'static str) -> Tool {
    Tool::new(name, description, no_arguments())
}

fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn string_arg(arguments: &JsonObject, key: &str) -> String {
    arguments
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The text of a sampling answer (`CreateMessageResult.content`, a block or a list of blocks).
fn sampled_text(answer: &Value) -> String {
    let content = &answer["content"];
    let blocks = content
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![content.clone()]);
    blocks
        .iter()
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("")
}

fn elicitation_summary(prefix: &str, answer: &Value) -> String {
    let action = answer["action"].as_str().unwrap_or("unknown");
    let content = answer.get("content").cloned().unwrap_or(Value::Null);
    format!("{prefix}action={action}, content={content}")
}

fn form(message: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "message": message,
        "requestedSchema": {"type": "object", "properties": properties, "required": required}
    })
}

impl Fixtures {
    fn json_schema_tool() -> Tool {
        let schema = json_object(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "$anchor": "addressDef",
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
                }
            },
            "properties": {
                "name": {"type": "string"},
                "address": {"$ref": "#/$defs/address"},
                "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                "phone": {"type": "string"},
                "email": {"type": "string"}
            },
            "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
            "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
            "then": {"required": ["phone"]},
            "else": {"required": ["email"]},
            "additionalProperties": false
        }));
        Tool::new(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            schema,
        )
    }

    async fn logging(&self, ctx: &RequestContext) -> Result<CallToolResult, CallError> {
        let logger = Some("conformance-fixtures");
        ctx.log(LogLevel::Info, logger, json!("Tool execution started"));
        tokio::time::sleep(STEP).await;
        ctx.log(LogLevel::Info, logger, json!("Tool processing data"));
        tokio::time::sleep(STEP).await;
        ctx.log(LogLevel::Info, logger, json!("Tool execution completed"));
        Ok(text_result("Tool with logging executed successfully"))
    }

    async fn progress(&self, ctx: &RequestContext) -> Result<CallToolResult, CallError> {
        ctx.progress(0.0, Some(100.0), None);
        tokio::time::sleep(STEP).await;
        ctx.progress(50.0, Some(100.0), None);
        tokio::time::sleep(STEP).await;
        ctx.progress(100.0, Some(100.0), None);
        Ok(text_result("Tool with progress executed successfully"))
    }

    /// Sleeps in small steps so a cancellation stops it promptly; reports progress as it goes.
    async fn slow(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, CallError> {
        let millis = arguments
            .get("ms")
            .and_then(Value::as_u64)
            .unwrap_or(1000)
            .min(60_000);
        let steps = (millis / 50).max(1);
        for step in 0..steps {
            ctx.progress(step as f64, Some(steps as f64), Some("working"));
            tokio::time::sleep(Duration::from_millis(millis / steps)).await;
        }
        Ok(text_result(format!("Slept {millis} ms")))
    }

    /// The tasks suite's long job: `seconds` of work in small steps (0: done at once).
    async fn slow_compute(&self, arguments: &JsonObject) -> Result<CallToolResult, CallError> {
        let seconds = arguments
            .get("seconds")
            .and_then(Value::as_f64)
            .unwrap_or(1.0)
            .clamp(0.0, 600.0);
        let label = string_arg(arguments, "label");
        let mut watch = StopWatch {
            label: label.clone(),
            finished: false,
            stopped: &self.stopped_early,
        };
        let total = Duration::from_secs_f64(seconds);
        let started = tokio::time::Instant::now();
        while started.elapsed() < total {
            tokio::time::sleep(STEP.min(total - started.elapsed())).await;
        }
        watch.finished = true;
        Ok(text_result(format!("Computed {label} in {seconds} s")))
    }

    /// A task that stops for the user's confirmation (elicitation) once it has started.
    async fn confirm_delete(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, CallError> {
        tokio::task::yield_now().await;
        let filename = string_arg(arguments, "filename");
        let params = form(
            &format!("Delete {filename}?"),
            json!({"confirm": {"type": "boolean"}}),
            &["confirm"],
        );
        let answer = ctx.elicit("confirm_delete", params).await?;
        let confirmed = answer["action"] == "accept" && answer["content"]["confirm"] == true;
        Ok(text_result(if confirmed {
            format!("Deleted {filename}")
        } else {
            format!("Kept {filename}")
        }))
    }

    /// A task that asks two things at once, to be answered one at a time.
    async fn multi_input(&self, ctx: &RequestContext) -> Result<CallToolResult, CallError> {
        tokio::task::yield_now().await;
        let question = |message: &str| {
            form(
                message,
                json!({"name": {"type": "string"}, "confirm": {"type": "boolean"}}),
                &[],
            )
        };
        let answers = ctx
            .ask_all(
                vec![
                    ("first", "elicitation/create", question("First input?")),
                    ("second", "elicitation/create", question("Second input?")),
                ],
                None,
            )
            .await?;
        let names: Vec<&str> = answers
            .values()
            .filter_map(|answer| answer["content"]["name"].as_str())
            .collect();
        Ok(text_result(format!("Received {}", names.join(" and "))))
    }

    /// Asks for a name while the call is still a plain `tools/call` (an MRTR round), then
    /// goes on as a task that greets that name.
    async fn task_after_input(&self, ctx: &RequestContext) -> Result<CallToolResult, CallError> {
        let params = form(
            "What is your name?",
            json!({"name": {"type": "string"}}),
            &["name"],
        );
        let answer = ctx.elicit("user_name", params).await?;
        let name = answer["content"]["name"]
            .as_str()
            .unwrap_or("stranger")
            .to_owned();
        tokio::time::sleep(STEP).await;
        Ok(text_result(format!("Hello, {name}! Your task is done.")))
    }

    async fn multi_round(&self, ctx: &RequestContext) -> Result<CallToolResult, CallError> {
        let name = match ctx
            .request_state()
            .and_then(|state| state.strip_prefix("round-2:"))
        {
            Some(name) => name.to_owned(),
            None => {
                let params = form(
                    "Step 1: What is your name?",
                    json!({"name": {"type": "string"}}),
                    &["name"],
                );
                let answer = ctx
                    .ask(
                        "step1",
                        "elicitation/create",
                        params,
                        Some("round-1".to_owned()),
                    )
                    .await?;
                answer["content"]["name"]
                    .as_str()
                    .unwrap_or("stranger")
                    .to_owned()
            }
        };
        let params = form(
            "Step 2: What is your favorite color?",
            json!({"color": {"type": "string"}}),
            &["color"],
        );
        let answer = ctx
            .ask(
                "step2",
                "elicitation/create",
                params,
                Some(format!("round-2:{name}")),
            )
            .await?;
        let color = answer["content"]["color"].as_str().unwrap_or("unknown");
        Ok(text_result(format!(
            "Hello, {name}! Your favorite color is {color}."
        )))
    }

    async fn multiple_inputs(&self, ctx: &RequestContext) -> Result<CallToolResult, CallError> {
        let answers = ctx
            .ask_all(
                vec![
                    (
                        "user_name",
                        "elicitation/create",
                        form("What is your name?", json!({"name": {"type": "string"}}), &["name"]),
                    ),
                    (
                        "greeting",
                        "sampling/createMessage",
                        json!({
                            "messages": [{"role": "user", "content": {"type": "text", "text": "Generate a greeting"}}],
                            "maxTokens": 50
                        }),
                    ),
                    ("client_roots", "roots/list", json!({})),
                ],
                Some("multiple-inputs".to_owned()),
            )
            .await?;
        let name = answers["user_name"]["content"]["name"]
            .as_str()
            .unwrap_or("stranger");
        let greeting = sampled_text(&answers["greeting"]);
        let roots = answers["client_roots"]["roots"]
            .as_array()
            .map_or(0, Vec::len);
        Ok(text_result(format!(
            "Name: {name}; greeting: {greeting}; roots: {roots}"
        )))
    }

    /// Asks only for what the client declared it can answer.
    async fn capability_aware(&self, ctx: &RequestContext) -> Result<CallToolResult, CallError> {
        let mut questions = Vec::new();
        if ctx.has_capability("elicitation") {
            questions.push((
                "user_name",
                "elicitation/create",
                form(
                    "What is your name?",
                    json!({"name": {"type": "string"}}),
                    &["name"],
                ),
            ));
        }
        if ctx.has_capability("sampling") {
            questions.push((
                "capital_question",
                "sampling/createMessage",
                json!({
                    "messages": [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}],
                    "maxTokens": 100
                }),
            ));
        }
        if ctx.has_capability("roots") {
            questions.push(("client_roots", "roots/list", json!({})));
        }
        if questions.is_empty() {
            return Ok(text_result(
                "The client declared no capability to ask through",
            ));
        }
        let answers = ctx.ask_all(questions, None).await?;
        let keys: Vec<&String> = answers.keys().collect();
        Ok(text_result(format!("Received answers for: {keys:?}")))
    }

    fn change_tools(&self) -> CallToolResult {
        self.extra_tool.fetch_xor(true, Ordering::SeqCst);
        self.events.send(ServerEvent::ToolsListChanged);
        text_result("The tool list changed")
    }

    fn change_prompts(&self) -> CallToolResult {
        self.extra_prompt.fetch_xor(true, Ordering::SeqCst);
        self.events.send(ServerEvent::PromptsListChanged);
        text_result("The prompt list changed")
    }

    async fn call(
        &self,
        name: &str,
        arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(match name {
            "test_simple_text" => text_result("This is a simple text response for testing."),
            "test_x_mcp_header" => {
                text_result(format!("Region: {}", string_arg(&arguments, "region")))
            }
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(RED_PIXEL_PNG, "image/png")])
            }
            "test_audio_content" => {
                CallToolResult::success(vec![ContentBlock::audio(SILENT_WAV, "audio/wav")])
            }
            "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                )
                .with_mime_type("text/plain"),
            )]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(RED_PIXEL_PNG, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        r#"{"test":"data","value":123}"#,
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ]),
            "test_structured_content" => {
                let location = string_arg(&arguments, "location");
                let data = json!({"location": location, "temperature": 22.5, "conditions": "Partly cloudy"});
                let mut result = CallToolResult::structured(data.clone());
                result.content = vec![ContentBlock::text(data.to_string())];
                result
            }
            "test_tool_with_logging" | "test_logging_tool" => return self.logging(ctx).await,
            "test_tool_with_progress" => return self.progress(ctx).await,
            "test_slow" => return self.slow(&arguments, ctx).await,
            "test_error_handling" => CallToolResult::error(vec![ContentBlock::text(
                "This tool intentionally returns an error for testing",
            )]),
            "test_panic" => panic!("test_panic panics on purpose"),
            "test_sampling" => {
                let prompt = string_arg(&arguments, "prompt");
                let answer = ctx
                    .create_message(
                        "sampling",
                        json!({
                            "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                            "maxTokens": 100
                        }),
                    )
                    .await?;
                text_result(format!("LLM response: {}", sampled_text(&answer)))
            }
            "test_elicitation" => {
                let message = string_arg(&arguments, "message");
                let params = form(
                    &message,
                    json!({
                        "username": {"type": "string", "description": "User's response"},
                        "email": {"type": "string", "description": "User's email address"}
                    }),
                    &["username", "email"],
                );
                let answer = ctx.elicit("elicitation", params).await?;
                text_result(elicitation_summary("User response: ", &answer))
            }
            "test_elicitation_sep1034_defaults" => {
                let params = form(
                    "Please review and update the form fields with defaults",
                    json!({
                        "name": {"type": "string", "description": "User name", "default": "John Doe"},
                        "age": {"type": "integer", "description": "User age", "default": 30},
                        "score": {"type": "number", "description": "User score", "default": 95.5},
                        "status": {"type": "string", "description": "User status",
                                   "enum": ["active", "inactive", "pending"], "default": "active"},
                        "verified": {"type": "boolean", "description": "Verification status", "default": true}
                    }),
                    &[],
                );
                let answer = ctx.elicit("defaults", params).await?;
                text_result(elicitation_summary("Elicitation completed: ", &answer))
            }
            "test_elicitation_sep1330_enums" => {
                let params = form(
                    "Please select options from the enum fields",
                    json!({
                        "untitledSingle": {"type": "string", "description": "Choose one option",
                                           "enum": ["option1", "option2", "option3"]},
                        "titledSingle": {"type": "string", "description": "Choose one titled option",
                                         "oneOf": [{"const": "value1", "title": "First Option"},
                                                   {"const": "value2", "title": "Second Option"},
                                                   {"const": "value3", "title": "Third Option"}]},
                        "legacyEnum": {"type": "string", "description": "Choose one option (legacy)",
                                       "enum": ["opt1", "opt2", "opt3"],
                                       "enumNames": ["Option One", "Option Two", "Option Three"]},
                        "untitledMulti": {"type": "array", "description": "Choose multiple options",
                                          "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                        "titledMulti": {"type": "array", "description": "Choose multiple titled options",
                                        "items": {"anyOf": [{"const": "value1", "title": "First Choice"},
                                                            {"const": "value2", "title": "Second Choice"},
                                                            {"const": "value3", "title": "Third Choice"}]}}
                    }),
                    &[],
                );
                let answer = ctx.elicit("enums", params).await?;
                text_result(elicitation_summary("Elicitation completed: ", &answer))
            }
            "test_missing_capability" => {
                let answer = ctx
                    .create_message(
                        "sampling",
                        json!({
                            "messages": [{"role": "user", "content": {"type": "text", "text": "Say hello"}}],
                            "maxTokens": 20
                        }),
                    )
                    .await?;
                text_result(format!("LLM response: {}", sampled_text(&answer)))
            }
            "test_streaming_elicitation" => {
                ctx.progress(0.0, Some(1.0), Some("asking the user"));
                let params = form(
                    "Please confirm to continue",
                    json!({"ok": {"type": "boolean"}}),
                    &["ok"],
                );
                let answer = ctx.elicit("confirm", params).await?;
                text_result(elicitation_summary("Confirmed: ", &answer))
            }
            "test_input_required_result_elicitation" => {
                let params = form(
                    "What is your name?",
                    json!({"name": {"type": "string"}}),
                    &["name"],
                );
                let answer = ctx.elicit("user_name", params).await?;
                match answer["content"]["name"].as_str() {
                    Some(name) => text_result(format!("Hello, {name}!")),
                    None => return Err(McpError::invalid_params(
                        "inputResponses.user_name must be an ElicitResult whose content has a string `name`",
                    )
                    .into()),
                }
            }
            "test_input_required_result_sampling" => {
                let answer = ctx
                    .create_message(
                        "capital_question",
                        json!({
                            "messages": [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}],
                            "maxTokens": 100
                        }),
                    )
                    .await?;
                text_result(format!("Sampling response: {}", sampled_text(&answer)))
            }
            "test_input_required_result_list_roots" => {
                let answer = ctx.list_roots("client_roots").await?;
                let uris: Vec<&str> = answer["roots"]
                    .as_array()
                    .map(|roots| {
                        roots
                            .iter()
                            .filter_map(|root| root["uri"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                text_result(format!("Client roots: {}", uris.join(", ")))
            }
            "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                let params = form(
                    "Please confirm",
                    json!({"ok": {"type": "boolean"}}),
                    &["ok"],
                );
                let answer = ctx
                    .ask(
                        "confirm",
                        "elicitation/create",
                        params,
                        Some("awaiting-confirmation".to_owned()),
                    )
                    .await?;
                let state_ok = match ctx.request_state() {
                    Some("awaiting-confirmation") => "state-ok",
                    // A legacy session asks directly, so there is no state to echo.
                    _ => "state-not-needed",
                };
                text_result(format!("Confirmed ({state_ok}): {}", answer["content"]))
            }
            "test_input_required_result_multiple_inputs" => return self.multiple_inputs(ctx).await,
            "test_input_required_result_multi_round" => return self.multi_round(ctx).await,
            "test_input_required_result_capabilities" => return self.capability_aware(ctx).await,
            "test_trigger_tool_change" => self.change_tools(),
            "test_trigger_prompt_change" => self.change_prompts(),
            "test_trigger_resource_update" => {
                self.events.send(ServerEvent::ResourceUpdated {
                    uri: "test://watched-resource".to_owned(),
                });
                text_result("test://watched-resource was updated")
            }
            "test_added_tool" => text_result("This tool appears after test_trigger_tool_change"),
            "greet" => text_result(format!("Hello, {}!", string_arg(&arguments, "name"))),
            "slow_compute" => return self.slow_compute(&arguments).await,
            "slow_compute_stopped" => {
                let stopped = self
                    .stopped_early
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                text_result(format!("Stopped early: {}", stopped.join(", ")))
            }
            "failing_job" => {
                tokio::time::sleep(STEP * 4).await;
                CallToolResult::error(vec![ContentBlock::text(
                    "failing_job fails on purpose (a tool error)",
                )])
            }
            "protocol_error_job" => {
                tokio::time::sleep(STEP).await;
                return Err(McpError::internal("protocol_error_job fails on purpose").into());
            }
            "confirm_delete" => return self.confirm_delete(&arguments, ctx).await,
            "multi_input" => return self.multi_input(ctx).await,
            "test_tool_with_task" => return self.task_after_input(ctx).await,
            "json_schema_2020_12_tool" => {
                text_result(format!("Received: {}", Value::Object(arguments)))
            }
            other => return Err(McpError::invalid_params(format!("Unknown tool: {other}")).into()),
        })
    }
}

impl McpServer for Fixtures {
    fn features(&self) -> Features {
        Features {
            tools_list_changed: true,
            resources: true,
            resources_subscribe: true,
            resources_list_changed: false,
            prompts: true,
            prompts_list_changed: true,
            completions: true,
            logging: true,
        }
    }

    fn tools(&self) -> Vec<Tool> {
        let mut tools = vec![
            tool("test_simple_text", "Returns a simple text response"),
            Tool::new(
                "test_x_mcp_header",
                "Echoes `region`, which HTTP clients mirror in the Mcp-Param-Region header",
                json_object(json!({"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "query": {"type": "string"}}, "required": ["region"]})),
            ),
            tool("test_image_content", "Returns an image (a 1x1 red PNG)"),
            tool("test_audio_content", "Returns a short WAV audio clip"),
            tool("test_embedded_resource", "Returns an embedded text resource"),
            tool("test_multiple_content_types", "Returns text, an image and an embedded resource"),
            Tool::new(
                "test_structured_content",
                "Returns structured content that matches its output schema",
                json_object(json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]})),
            )
            .with_raw_output_schema(json_object(json!({
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "temperature": {"type": "number"},
                    "conditions": {"type": "string"}
                },
                "required": ["location", "temperature", "conditions"]
            }))),
            tool("test_tool_with_logging", "Sends three info log messages while it runs"),
            tool("test_logging_tool", "Sends log messages only when the request asked for them"),
            tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100"),
            Tool::new(
                "test_slow",
                "Works for `ms` milliseconds (default 1000), reporting progress; for cancellation tests",
                json_object(json!({"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0}}})),
            ),
            tool("test_error_handling", "Always fails with a tool error"),
            tool("test_panic", "Panics, to show that a crashing tool only fails its own call"),
            Tool::new(
                "test_sampling",
                "Asks the client's model to answer a prompt (sampling)",
                json_object(json!({"type": "object", "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}}, "required": ["prompt"]})),
            ),
            Tool::new(
                "test_elicitation",
                "Asks the user for a username and email (elicitation)",
                json_object(json!({"type": "object", "properties": {"message": {"type": "string", "description": "The message to show the user"}}, "required": ["message"]})),
            ),
            tool("test_elicitation_sep1034_defaults", "Elicitation with defaults for every primitive type"),
            tool("test_elicitation_sep1330_enums", "Elicitation with every enum variant"),
            tool("test_missing_capability", "Needs the sampling capability"),
            tool("test_streaming_elicitation", "Reports progress, then needs elicitation"),
            tool("test_input_required_result_elicitation", "Asks for the user's name"),
            tool("test_input_required_result_sampling", "Asks the client's model a question"),
            tool("test_input_required_result_list_roots", "Asks for the client's roots"),
            tool("test_input_required_result_request_state", "Round-trips requestState"),
            tool("test_input_required_result_tampered_state", "Rejects a tampered requestState"),
            tool("test_input_required_result_multiple_inputs", "Asks three things at once"),
            tool("test_input_required_result_multi_round", "Asks in two rounds, carrying state"),
            tool("test_input_required_result_capabilities", "Asks only what the client can answer"),
            tool("test_trigger_tool_change", "Adds or removes test_added_tool"),
            tool("test_trigger_prompt_change", "Adds or removes test_added_prompt"),
            tool("test_trigger_resource_update", "Announces an update of test://watched-resource"),
            Self::json_schema_tool(),
            Tool::new(
                "greet",
                "Greets `name` at once (never a task)",
                json_object(json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})),
            ),
            Tool::new(
                "slow_compute",
                "Works for `seconds` (may run as a task; 0 answers at once)",
                json_object(json!({"type": "object", "properties": {"seconds": {"type": "number", "minimum": 0}, "label": {"type": "string"}}})),
            ),
            tool("slow_compute_stopped", "Lists the labels of slow_compute runs stopped before they finished"),
            tool("failing_job", "Runs only as a task, which ends in a tool error"),
            tool("protocol_error_job", "May run as a task, which fails with a JSON-RPC error"),
            Tool::new(
                "confirm_delete",
                "May run as a task that asks the user to confirm deleting `filename`",
                json_object(json!({"type": "object", "properties": {"filename": {"type": "string"}}, "required": ["filename"]})),
            ),
            tool("multi_input", "May run as a task that asks two questions at once"),
            tool("test_tool_with_task", "Asks for a name (a plain round), then runs only as a task"),
        ];
        if self.extra_tool.load(Ordering::SeqCst) {
            tools.push(tool(
                "test_added_tool",
                "Appears after test_trigger_tool_change",
            ));
        }
        tools
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        self.call(name, arguments, ctx).boxed()
    }

    fn task_support(&self, tool: &str) -> TaskSupport {
        match tool {
            "failing_job" | "test_tool_with_task" => TaskSupport::Required,
            "slow_compute" | "protocol_error_job" | "confirm_delete" | "multi_input" => {
                TaskSupport::Optional
            }
            _ => TaskSupport::Forbidden,
        }
    }

    fn resources(&self) -> Vec<Resource> {
        vec![
            Resource::new("test://static-text", "static-text")
                .with_description("A static text resource")
                .with_mime_type("text/plain"),
            Resource::new("test://static-binary", "static-binary")
                .with_description("A static binary resource (a PNG image)")
                .with_mime_type("image/png"),
            Resource::new("test://watched-resource", "watched-resource")
                .with_description("A resource to subscribe to")
                .with_mime_type("text/plain"),
        ]
    }

    fn resource_templates(&self) -> Vec<ResourceTemplate> {
        vec![
            ResourceTemplate::new("test://template/{id}/data", "template-data")
                .with_description("Data for an id, substituted into the URI")
                .with_mime_type("application/json"),
        ]
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        _ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let contents = match uri {
                "test://static-text" => {
                    ResourceContents::text("This is the content of the static text resource.", uri)
                        .with_mime_type("text/plain")
                }
                "test://static-binary" => ResourceContents::blob(RED_PIXEL_PNG, uri).with_mime_type("image/png"),
                "test://watched-resource" => {
                    ResourceContents::text("Watched resource content", uri).with_mime_type("text/plain")
                }
                _ => match uri
                    .strip_prefix("test://template/")
                    .and_then(|rest| rest.strip_suffix("/data"))
                    .filter(|id| !id.is_empty() && !id.contains('/'))
                {
                    Some(id) => {
                        let data = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                        ResourceContents::text(data.to_string(), uri).with_mime_type("application/json")
                    }
                    None => return Err(CallError::ResourceNotFound(uri.to_owned())),
                },
            };
            Ok(ReadResourceResult::new(vec![contents]))
        }
        .boxed()
    }

    fn prompts(&self) -> Vec<Prompt> {
        let required = |name: &str, description: &str| {
            PromptArgument::new(name)
                .with_description(description)
                .with_required(true)
        };
        let mut prompts = vec![
            Prompt::new(
                "test_simple_prompt",
                Some("A simple prompt without arguments"),
                None,
            ),
            Prompt::new(
                "test_prompt_with_arguments",
                Some("A prompt with two required arguments"),
                Some(vec![
                    required("arg1", "First test argument"),
                    required("arg2", "Second test argument"),
                ]),
            ),
            Prompt::new(
                "test_prompt_with_embedded_resource",
                Some("A prompt that embeds a resource"),
                Some(vec![required(
                    "resourceUri",
                    "URI of the resource to embed",
                )]),
            ),
            Prompt::new(
                "test_prompt_with_image",
                Some("A prompt with an image"),
                None,
            ),
            Prompt::new(
                "test_input_required_result_prompt",
                Some("A prompt that asks the user for context first"),
                None,
            ),
        ];
        if self.extra_prompt.load(Ordering::SeqCst) {
            prompts.push(Prompt::new(
                "test_added_prompt",
                Some("Appears after test_trigger_prompt_change"),
                None,
            ));
        }
        prompts
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<GetPromptResult, CallError>> {
        async move {
            let messages = match name {
                "test_simple_prompt" => vec![PromptMessage::new_text(
                    Role::User,
                    "This is a simple prompt for testing.",
                )],
                "test_prompt_with_arguments" => {
                    let (arg1, arg2) = (
                        string_arg(&arguments, "arg1"),
                        string_arg(&arguments, "arg2"),
                    );
                    vec![PromptMessage::new_text(
                        Role::User,
                        format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
                    )]
                }
                "test_prompt_with_embedded_resource" => {
                    let uri = string_arg(&arguments, "resourceUri");
                    vec![
                        PromptMessage::new(
                            Role::User,
                            ContentBlock::resource(
                                ResourceContents::text(
                                    "Embedded resource content for testing.",
                                    uri,
                                )
                                .with_mime_type("text/plain"),
                            ),
                        ),
                        PromptMessage::new_text(
                            Role::User,
                            "Please process the embedded resource above.",
                        ),
                    ]
                }
                "test_prompt_with_image" => vec![
                    PromptMessage::new(Role::User, ContentBlock::image(RED_PIXEL_PNG, "image/png")),
                    PromptMessage::new_text(Role::User, "Please analyze the image above."),
                ],
                "test_input_required_result_prompt" => {
                    let params = form(
                        "What context should the prompt use?",
                        json!({"context": {"type": "string"}}),
                        &["context"],
                    );
                    let answer = ctx.elicit("user_context", params).await?;
                    let context = answer["content"]["context"].as_str().unwrap_or_default();
                    vec![PromptMessage::new_text(
                        Role::User,
                        format!("Use this context: {context}"),
                    )]
                }
                "test_added_prompt" => {
                    vec![PromptMessage::new_text(Role::User, "An added prompt.")]
                }
                other => {
                    return Err(McpError::invalid_params(format!("Unknown prompt: {other}")).into())
                }
            };
            Ok(GetPromptResult::new(messages))
        }
        .boxed()
    }

    fn complete<'a>(
        &'a self,
        params: CompleteRequestParams,
        _ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CompleteResult, McpError>> {
        async move {
            const CANDIDATES: [&str; 5] = ["paris", "park", "party", "pasta", "hello"];
            let typed = params.argument.value.to_lowercase();
            let values: Vec<String> = CANDIDATES
                .iter()
                .filter(|candidate| candidate.starts_with(&typed))
                .map(|candidate| (*candidate).to_owned())
                .collect();
            let info = CompletionInfo::with_all_values(values).map_err(McpError::internal)?;
            Ok(CompleteResult::new(info))
        }
        .boxed()
    }
}

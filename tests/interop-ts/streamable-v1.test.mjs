// The official v1 TypeScript client over Streamable HTTP with a session (2025-11-25 era):
// initialize, server→client requests and notifications, then DELETE of the session.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema
} from '@modelcontextprotocol/sdk/types.js';

import { TEST_TIMEOUT_MS, baseUrl, onlyText, toolNames } from './lib.mjs';

const endpoint = new URL(`${baseUrl}/conformance-fixtures/ts-user/mcp`);

const client = new Client(
  { name: 'gumcp-interop-streamable-v1', version: '1.0.0' },
  { capabilities: { sampling: {}, elicitation: {} } }
);
const transport = new StreamableHTTPClientTransport(endpoint);

// Transport failures outside a request (e.g. the standalone GET stream being refused with
// something other than 405) only surface here, so they are collected and asserted on.
const transportErrors = [];
client.onerror = (error) => transportErrors.push(error);

const logMessages = [];
client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
  logMessages.push(notification.params);
});
client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
  const prompt = request.params.messages.at(-1)?.content?.text;
  return {
    role: 'assistant',
    content: { type: 'text', text: `echo: ${prompt}` },
    model: 'interop-test-model',
    stopReason: 'endTurn'
  };
});
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  assert.deepEqual(request.params.requestedSchema.required, ['username', 'email']);
  return { action: 'accept', content: { username: 'ts-user', email: 'ts@example.com' } };
});

// Every test below uses this one session, so a failed connect fails them all at once.
before(async () => {
  await client.connect(transport);
});

after(async () => {
  await client.close().catch(() => {});
});

async function waitFor(predicate, what, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('streamable HTTP: initialize issues a session', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.match(transport.sessionId ?? '', /^[\x21-\x7E]+$/, `Mcp-Session-Id must be visible ASCII, got ${JSON.stringify(transport.sessionId)}`);
  assert.equal(client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion, '2025-11-25');
  const capabilities = client.getServerCapabilities();
  for (const capability of ['tools', 'resources', 'prompts', 'logging']) {
    assert.ok(capabilities?.[capability], `server does not declare ${capability}: ${JSON.stringify(capabilities)}`);
  }
});

test('streamable HTTP: tools, resources and prompts', { timeout: TEST_TIMEOUT_MS }, async () => {
  const names = toolNames(await client.listTools());
  for (const name of ['test_simple_text', 'test_tool_with_progress', 'test_tool_with_logging', 'test_sampling', 'test_elicitation']) {
    assert.ok(names.includes(name), `tools/list lacks ${name}: ${names.join(', ')}`);
  }

  assert.equal(
    onlyText(await client.callTool({ name: 'test_simple_text', arguments: {} })),
    'This is a simple text response for testing.'
  );

  const failed = await client.callTool({ name: 'test_error_handling', arguments: {} });
  assert.equal(failed.isError, true);
  assert.equal(onlyText(failed), 'This tool intentionally returns an error for testing');

  const read = await client.readResource({ uri: 'test://static-text' });
  assert.deepEqual(read.contents, [
    { uri: 'test://static-text', mimeType: 'text/plain', text: 'This is the content of the static text resource.' }
  ]);

  const prompt = await client.getPrompt({ name: 'test_prompt_with_arguments', arguments: { arg1: 'a', arg2: 'b' } });
  assert.deepEqual(prompt.messages, [
    { role: 'user', content: { type: 'text', text: "Prompt with arguments: arg1='a', arg2='b'" } }
  ]);
});

test('streamable HTTP: progress notifications arrive before the result', { timeout: TEST_TIMEOUT_MS }, async () => {
  const progress = [];
  const result = await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined, {
    onprogress: (update) => progress.push(update)
  });
  assert.equal(onlyText(result), 'Tool with progress executed successfully');
  assert.deepEqual(
    progress.map(({ progress: done, total }) => [done, total]),
    [[0, 100], [50, 100], [100, 100]]
  );
});

test('streamable HTTP: log notifications honour logging/setLevel', { timeout: TEST_TIMEOUT_MS }, async () => {
  await client.setLoggingLevel('info');
  logMessages.length = 0;
  const result = await client.callTool({ name: 'test_tool_with_logging', arguments: {} });
  assert.equal(onlyText(result), 'Tool with logging executed successfully');
  await waitFor(() => logMessages.length >= 3, '3 notifications/message');
  assert.deepEqual(
    logMessages.map(({ level, data }) => [level, data]),
    [['info', 'Tool execution started'], ['info', 'Tool processing data'], ['info', 'Tool execution completed']]
  );
});

test('streamable HTTP: server→client sampling and elicitation', { timeout: TEST_TIMEOUT_MS }, async () => {
  const sampled = await client.callTool({ name: 'test_sampling', arguments: { prompt: 'ping from TS' } });
  assert.equal(onlyText(sampled), 'LLM response: echo: ping from TS');

  const elicited = onlyText(await client.callTool({ name: 'test_elicitation', arguments: { message: 'who are you?' } }));
  const prefix = 'User response: action=accept, content=';
  assert.ok(elicited.startsWith(prefix), `unexpected elicitation reply ${JSON.stringify(elicited)}`);
  assert.deepEqual(JSON.parse(elicited.slice(prefix.length)), { username: 'ts-user', email: 'ts@example.com' });
});

// Before the DELETE: once the session is gone, the SDK's GET-stream reconnects may fail by design.
test('streamable HTTP: no transport errors outside requests (GET stream: SSE or 405)', () => {
  assert.deepEqual(transportErrors.map(String), []);
});

test('streamable HTTP: DELETE ends the session, later requests get 404', { timeout: TEST_TIMEOUT_MS }, async () => {
  const sessionId = transport.sessionId;
  await transport.terminateSession();
  assert.equal(transport.sessionId, undefined, 'terminateSession should have succeeded (2xx or 405)');

  const response = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25'
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list', params: {} })
  });
  await response.body?.cancel();
  assert.equal(response.status, 404, `a request on a deleted session must get 404, got ${response.status}`);
});

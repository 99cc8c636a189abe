// The official v2 TypeScript client pinned to the stateless 2026-07-28 protocol: server/discover
// instead of initialize, per-request _meta and headers, InputRequiredResult instead of
// server→client requests.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { TEST_TIMEOUT_MS, baseUrl, onlyText, runId, toolNames } from './lib.mjs';

const MODERN = '2026-07-28';
const clients = [];

async function connect(path, capabilities = {}) {
  const client = new Client(
    { name: 'gumcp-interop-modern-v2', version: '1.0.0' },
    { capabilities, versionNegotiation: { mode: { pin: MODERN } } }
  );
  clients.push(client);
  await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}${path}`)));
  return client;
}

after(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
});

test('2026-07-28: discover, list and call simple-tools-server', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = await connect('/simple-tools-server/mcp');
  assert.equal(client.getProtocolEra(), 'modern');
  assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
  const discovered = client.getDiscoverResult();
  assert.ok(discovered?.supportedVersions?.includes(MODERN), `server/discover: ${JSON.stringify(discovered)}`);
  assert.ok(discovered.capabilities?.tools, `server/discover declares no tools capability: ${JSON.stringify(discovered)}`);

  const listed = await client.listTools();
  assert.deepEqual([...toolNames(listed)].sort(), ['list-data', 'retrieve-data', 'store-data']);

  const key = `v2-key-${runId}`;
  const value = `v2 value ${runId}`;
  assert.equal(onlyText(await client.callTool({ name: 'store-data', arguments: { key, value } })), `Stored '${key}' with value: ${value}`);
  assert.equal(onlyText(await client.callTool({ name: 'retrieve-data', arguments: { key } })), `Value for '${key}': ${value}`);
});

test('2026-07-28: InputRequiredResult rounds are fulfilled by the client', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = await connect('/conformance-fixtures/mcp', { elicitation: {} });
  const asked = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params.message);
    return { action: 'accept', content: { name: 'Ada' } };
  });

  const result = await client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} });
  assert.equal(onlyText(result), 'Hello, Ada!');
  assert.deepEqual(asked, ['What is your name?']);
});

test('2026-07-28: tool errors and unknown tools', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = await connect('/conformance-fixtures/mcp');
  const failed = await client.callTool({ name: 'test_error_handling', arguments: {} });
  assert.equal(failed.isError, true);
  assert.equal(onlyText(failed), 'This tool intentionally returns an error for testing');

  await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), (error) => {
    assert.equal(error.code, -32602, `expected -32602 for an unknown tool, got ${error.code}: ${error.message}`);
    return true;
  });
});

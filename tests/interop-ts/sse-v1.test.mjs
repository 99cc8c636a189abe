// The official v1 TypeScript client over guMCP's legacy HTTP+SSE transport
// (GET /{server}/{session_key}, then POST to the endpoint the first event names).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';

import { TEST_TIMEOUT_MS, baseUrl, onlyText, runId, toolNames } from './lib.mjs';

const clients = [];

async function connect(user) {
  const client = new Client({ name: 'gumcp-interop-sse-v1', version: '1.0.0' });
  clients.push(client);
  await client.connect(new SSEClientTransport(new URL(`${baseUrl}/simple-tools-server/${user}`)));
  return client;
}

after(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
});

const key = `ts-key-${runId}`;
const value = `ts value ${runId}`;

test('legacy SSE: initialize, list tools, store then retrieve', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = await connect('ts-user');

  const server = client.getServerVersion();
  assert.equal(typeof server?.name, 'string', `initialize result has no serverInfo.name: ${JSON.stringify(server)}`);

  const names = toolNames(await client.listTools());
  assert.deepEqual([...names].sort(), ['list-data', 'retrieve-data', 'store-data']);

  const stored = await client.callTool({ name: 'store-data', arguments: { key, value } });
  assert.notEqual(stored.isError, true, `store-data failed: ${JSON.stringify(stored)}`);
  assert.equal(onlyText(stored), `Stored '${key}' with value: ${value}`);

  const retrieved = await client.callTool({ name: 'retrieve-data', arguments: { key } });
  assert.equal(onlyText(retrieved), `Value for '${key}': ${value}`);

  const listed = onlyText(await client.callTool({ name: 'list-data', arguments: {} }));
  assert.ok(listed.startsWith('Stored data:\n'), `list-data answered ${JSON.stringify(listed)}`);
  assert.ok(listed.split('\n').includes(`- ${key}: ${value}`), `list-data lacks the stored pair: ${JSON.stringify(listed)}`);

  const missing = await client.callTool({ name: 'retrieve-data', arguments: { key: `${key}-absent` } });
  assert.equal(onlyText(missing), `Key '${key}-absent' not found`);

  // An empty value passes the input schema and reaches guMCP's own check.
  const invalid = await client.callTool({ name: 'store-data', arguments: { key, value: '' } });
  assert.equal(invalid.isError, true, `store-data with an empty value must be a tool error: ${JSON.stringify(invalid)}`);
  assert.equal(onlyText(invalid), 'Missing key or value');
});

test('legacy SSE: data belongs to the user, across connections', { timeout: TEST_TIMEOUT_MS }, async () => {
  const again = await connect('ts-user');
  assert.equal(onlyText(await again.callTool({ name: 'retrieve-data', arguments: { key } })), `Value for '${key}': ${value}`);

  const other = await connect(`ts-other-${runId}`);
  assert.equal(onlyText(await other.callTool({ name: 'retrieve-data', arguments: { key } })), `Key '${key}' not found`);
});

test('legacy SSE: an unknown tool is a JSON-RPC error', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = await connect('ts-user');
  await assert.rejects(client.callTool({ name: 'no-such-tool', arguments: {} }), (error) => {
    assert.equal(error.code, -32602, `expected -32602 for an unknown tool, got ${error.code}: ${error.message}`);
    return true;
  });
});

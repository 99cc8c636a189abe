// Shared by the interop tests: the server under test and small result helpers.
import assert from 'node:assert/strict';

const raw = process.env.GUMCP_URL;
if (!raw) {
  console.error('GUMCP_URL is not set (e.g. http://127.0.0.1:8000); run scripts/ts-interop.sh');
  process.exit(2);
}

/** The service root without a trailing slash, e.g. `http://127.0.0.1:8000`. */
export const baseUrl = raw.replace(/\/+$/, '');

/** Per-test timeout: long enough for a cold actor start, short enough that a hang fails. */
export const TEST_TIMEOUT_MS = 30_000;

/** Run-unique suffix, so reruns against one long-lived server never see each other's data. */
export const runId = `${process.pid}-${Date.now()}`;

/** The text of the single text block a tool answered with. */
export function onlyText(result) {
  assert.ok(Array.isArray(result?.content), `result has no content array: ${JSON.stringify(result)}`);
  const texts = result.content.filter((block) => block.type === 'text').map((block) => block.text);
  assert.equal(texts.length, 1, `expected exactly one text block, got ${JSON.stringify(result.content)}`);
  return texts[0];
}

export function toolNames(listResult) {
  assert.ok(Array.isArray(listResult?.tools), `tools/list result has no tools array: ${JSON.stringify(listResult)}`);
  return listResult.tools.map((tool) => tool.name);
}

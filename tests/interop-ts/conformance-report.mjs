// Summarises a `conformance server -o DIR` run: the CLI's own summary only counts failures, the
// messages live in DIR/server-<scenario>-<timestamp>/checks.json.
// Usage: node conformance-report.mjs DIR [REQUIREMENTS_YAML]
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, requirementsFile] = process.argv.slice(2);
if (!dir) {
  console.error('usage: conformance-report.mjs RESULTS_DIR [REQUIREMENTS_YAML]');
  process.exit(2);
}

// Just the top-level `server:` list of the frozen requirements file; not_scored entries are
// reported but marked, as the CLI's exit status ignores them.
function scoredServerScenarios(file) {
  if (!file) return undefined;
  const scored = new Set();
  let inServer = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\S/.test(line)) inServer = line.startsWith('server:');
    else if (inServer) {
      const match = line.match(/^\s+-\s+(\S+)\s*$/);
      if (match) scored.add(match[1]);
    }
  }
  return scored;
}

const scored = scoredServerScenarios(requirementsFile);
const rows = [];
for (const entry of readdirSync(dir, { withFileTypes: true })) {
  const match = entry.isDirectory() && entry.name.match(/^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/);
  if (!match) continue;
  const checks = JSON.parse(readFileSync(join(dir, entry.name, 'checks.json'), 'utf8'));
  rows.push({ scenario: match[1], checks });
}
rows.sort((a, b) => a.scenario.localeCompare(b.scenario));

const lines = [];
let scoredFailures = 0;
for (const { scenario, checks } of rows) {
  const count = (status) => checks.filter((check) => check.status === status).length;
  const failed = count('FAILURE');
  const isScored = !scored || scored.has(scenario);
  if (failed > 0 && isScored) scoredFailures++;
  const mark = failed > 0 ? 'FAIL' : 'ok  ';
  lines.push(
    `${mark} ${scenario}${isScored ? '' : ' (not scored)'}: ${count('SUCCESS')} passed, ${failed} failed, ${count('WARNING')} warnings`
  );
  for (const check of checks) {
    if (check.status !== 'FAILURE' && check.status !== 'WARNING') continue;
    const message = (check.errorMessage ?? check.description).replace(/\n/g, '\n        ');
    lines.push(`     ${check.status === 'FAILURE' ? 'FAILURE' : 'warning'} [${check.id}] ${message}`);
  }
}
lines.push(`${rows.length} scenarios, ${scoredFailures} scored scenario(s) failing`);

const report = lines.join('\n') + '\n';
writeFileSync(join(dir, 'report.txt'), report);
process.stdout.write(report);

#!/usr/bin/env node
// `npm run bench`: runs every bench/*.mjs (inside the local stack; see package.json), collects the
// JSON lines each prints on stdout, prints one table of ratios against the baselines measured in
// the same run, and writes bench/report.json. Exits 1 when a bench failed or missed its target.
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs' && f !== 'support.mjs')
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
let failed = 0;
const results = [];
for (const f of benches) {
  process.stderr.write(`bench: ${f}\n`);
  const r = spawnSync(process.execPath, [path.join(here, f)], {
    stdio: ['inherit', 'pipe', 'inherit'],
    env: process.env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  for (const line of (r.stdout ?? '').split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    try {
      results.push({ file: f, ...JSON.parse(line) });
    } catch {
      // not a result line
    }
  }
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`bench: ${f} exited ${r.status}\n`);
  }
}
const rows = results.map((x) => [
  `${x.bench}${x.case ? ` ${x.case}` : ''}`,
  x.ratio === undefined ? '-' : `${x.ratio}×`,
  x.want ?? '',
  x.ok === false ? 'MISSED' : '',
]);
const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), 8));
process.stdout.write(`\n${'benchmark'.padEnd(w[0])}  ${'ratio'.padEnd(w[1])}  ${'want'.padEnd(w[2])}\n`);
for (const r of rows)
  process.stdout.write(`${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}\n`);
const report = {
  when: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  },
  results,
};
writeFileSync(path.join(here, 'report.json'), JSON.stringify(report, null, 2) + '\n');
process.stderr.write(`bench: report written to ${path.join(here, 'report.json')}\n`);
process.exitCode = failed ? 1 : 0;

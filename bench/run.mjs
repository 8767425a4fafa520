#!/usr/bin/env node
// Bench runner (minimal; created with the send benchmark): runs every bench/*.mjs except this
// file, one after the other, passing the environment through (source the stack's env first).
// Each bench prints JSON lines on stdout and its ratios on stderr, and exits 1 when a target is missed.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
let failed = 0;
for (const f of benches) {
  process.stderr.write(`bench: ${f}\n`);
  const r = spawnSync(process.execPath, [path.join(here, f)], { stdio: 'inherit', env: process.env });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`bench: ${f} exited ${r.status}\n`);
  }
}
process.exitCode = failed ? 1 : 0;

#!/usr/bin/env node
// Send benchmark against the local Postfix (source the stack's env first; `npm run bench` does
// the build). Compares, in the same run and against the same server:
//   batch:  `oauthmail send --batch` with 1,000 lines  vs  a plain nodemailer pooled-transport
//           script sending the same 1,000 messages (same pool size, same token)   → throughput ratio (want ≥ 0.9)
//   single: `oauthmail send` with a cached token        vs  a plain nodemailer script sending one
//                                                                                    → wall-time ratio (want ≤ 1.5)
// Both sides are whole processes (node start-up included). Prints JSON lines and the two ratios.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, USER, admin, cliHome, env, median, needStack, runner, signIn } from './support.mjs';

needStack(
  'bench/send.mjs needs the local mail stack: source .stack/env (test/support/stack/start.sh) first',
  ['SMTP_PORT', 'IDP_URL'],
);
const N = Number(process.env.BENCH_N ?? 1000);
const CONNS = Number(process.env.BENCH_CONNECTIONS ?? 5);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);
const { dir, cliEnv } = cliHome('oauthmail-bench-');
const run = runner(cliEnv);

/** The profile `bench` (sending through the stack's Postfix), signed in; returns its access token. */
async function signInBench() {
  await admin('config', { deviceCodeInterval: 1 });
  await signIn(cliEnv, 'bench', [
    '--smtp',
    `${env.SMTP_HOST}:${env.SMTP_PORT}`,
    '--smtp-security',
    'starttls',
    '--storage',
    'file',
  ]);
  const r = await run(process.execPath, [BIN, 'token', 'bench']);
  if (r.code !== 0) throw new Error(r.err);
  return r.out.trim();
}

// the plain script: what someone would write with nodemailer alone
const PLAIN = `
import nodemailer from ${JSON.stringify(path.join(ROOT, 'node_modules/nodemailer/dist/esm/nodemailer.js'))};
const [n, conns, token, tag] = [Number(process.argv[2]), Number(process.argv[3]), process.env.BENCH_TOKEN, process.argv[4]];
const t = nodemailer.createTransport({ pool: n > 1, maxConnections: conns, maxMessages: Infinity, host: process.env.SMTP_HOST, port: Number(process.env.SMTP_PORT), requireTLS: true,
  auth: { type: 'OAuth2', user: ${JSON.stringify(USER)}, accessToken: token } });
await Promise.all(Array.from({ length: n }, (_, i) => t.sendMail({ from: ${JSON.stringify(USER)}, to: 'bob@contoso.test', subject: tag + ' #' + (i + 1), text: 'Hello n' + (i + 1) })));
t.close();
`;
const plainFile = path.join(dir, 'plain.mjs');
writeFileSync(plainFile, PLAIN);

const token = await signInBench();
cliEnv.BENCH_TOKEN = token;

// warm-up (page cache, Postfix processes)
await run(process.execPath, [plainFile, '20', String(CONNS), 'warmup']);

// batch
const batchFile = path.join(dir, 'batch.jsonl');
const batchRuns = { plain: [], cli: [] };
for (let k = 0; k < 2; k++) {
  const tag = `bench${Date.now()}`;
  writeFileSync(
    batchFile,
    Array.from({ length: N }, (_, i) =>
      JSON.stringify({ to: 'bob@contoso.test', subject: `${tag} #${i + 1}`, name: `n${i + 1}` }),
    ).join('\n') + '\n',
  );
  spawnSync('rm', ['-f', `${batchFile}.results.jsonl`]);
  const p = await run(process.execPath, [plainFile, String(N), String(CONNS), tag + 'p']);
  if (p.code !== 0) throw new Error(`plain batch failed: ${p.err}`);
  const c = await run(process.execPath, [
    BIN,
    '-p',
    'bench',
    'send',
    '--batch',
    batchFile,
    '--connections',
    String(CONNS),
    '--body',
    'Hello {{name}}',
  ]);
  if (c.code !== 0) throw new Error(`oauthmail batch failed (${c.code}): ${c.err.slice(-500)}`);
  batchRuns.plain.push(p.ms);
  batchRuns.cli.push(c.ms);
}
const plainRate = (N / median(batchRuns.plain)) * 1000;
const cliRate = (N / median(batchRuns.cli)) * 1000;

// single
const single = { plain: [], cli: [] };
for (let k = 0; k < REPEAT; k++) {
  const p = await run(process.execPath, [plainFile, '1', '1', `single${k}`]);
  if (p.code !== 0) throw new Error(`plain single failed: ${p.err}`);
  const c = await run(process.execPath, [
    BIN,
    '-p',
    'bench',
    'send',
    '--to',
    'bob@contoso.test',
    '-s',
    `single ${k}`,
    '--body',
    'Hello',
  ]);
  if (c.code !== 0) throw new Error(`oauthmail send failed: ${c.err}`);
  single.plain.push(p.ms);
  single.cli.push(c.ms);
}

const batchRatio = cliRate / plainRate;
const singleRatio = median(single.cli) / median(single.plain);
console.log(
  JSON.stringify({
    bench: 'send-batch',
    messages: N,
    connections: CONNS,
    plainMsPerRun: batchRuns.plain.map(Math.round),
    cliMsPerRun: batchRuns.cli.map(Math.round),
    plainPerSec: +plainRate.toFixed(1),
    cliPerSec: +cliRate.toFixed(1),
    ratio: +batchRatio.toFixed(3),
    want: '>= 0.9',
  }),
);
console.log(
  JSON.stringify({
    bench: 'send-single',
    plainMs: single.plain.map(Math.round),
    cliMs: single.cli.map(Math.round),
    plainMedianMs: Math.round(median(single.plain)),
    cliMedianMs: Math.round(median(single.cli)),
    ratio: +singleRatio.toFixed(3),
    want: '<= 1.5',
  }),
);
console.error(
  `send batch: oauthmail ${cliRate.toFixed(0)}/s vs plain nodemailer ${plainRate.toFixed(0)}/s → ratio ${batchRatio.toFixed(2)} (want ≥ 0.9)`,
);
console.error(
  `send single: oauthmail ${median(single.cli).toFixed(0)} ms vs plain nodemailer ${median(single.plain).toFixed(0)} ms → ratio ${singleRatio.toFixed(2)} (want ≤ 1.5)`,
);
process.exitCode = batchRatio >= 0.9 && singleRatio <= 1.5 ? 0 : 1;

#!/usr/bin/env node
// Start-up benchmark (needs the local stack: run through `npm run bench`). Median wall time of
// whole processes, each against `node -e 0` measured in the same run, interleaved so that machine
// noise hits both sides alike:
//   --version                 target: none (reported)
//   token (file store)        cached valid token; target ≤ 2.0 × node -e 0
//   token (keychain)          cached valid token in gnome-keyring; target ≤ 2.0 × node -e 0
//   send --dry-run            reported
// Prints one JSON line per case and exits 1 when a target is missed.
import { BIN, admin, cliHome, env, median, needStack, runner, signIn } from './support.mjs';

needStack('bench/startup.mjs needs the local stack: run it through `npm run bench`', ['IDP_URL']);
const REPEAT = Number(env.BENCH_REPEAT ?? 21);
const { cliEnv } = cliHome('oauthmail-bench-start-');
const runCmd = runner(cliEnv);
/** `node ARGS`, timed. */
const run = (args, input = '') => runCmd(process.execPath, args, input);

await admin('config', { deviceCodeInterval: 1, accessTokenLifetime: 3600 });
await signIn(cliEnv, 'file', ['--storage', 'file']);
await signIn(cliEnv, 'keychain', ['--storage', 'keychain']);

const cases = [
  { name: '--version', args: [BIN, '--version'] },
  { name: 'token (file store)', args: [BIN, 'token', 'file'], target: 2.0 },
  { name: 'token (keychain)', args: [BIN, 'token', 'keychain'], target: 2.0 },
  {
    name: 'send --dry-run',
    args: [BIN, '-p', 'file', 'send', '--dry-run', '--to', 'bob@contoso.test', '-s', 'bench', '--body', 'hi'],
  },
];
// warm up the page cache and the IdP (first token call may refresh nothing, but loads files)
for (const c of cases) {
  const r = await run(c.args);
  if (r.code !== 0) throw new Error(`${c.name} failed (${r.code}): ${r.err}`);
}
const base = [];
const times = Object.fromEntries(cases.map((c) => [c.name, []]));
for (let i = 0; i < REPEAT; i++) {
  base.push((await run(['-e', '0'])).ms);
  for (const c of cases) {
    const r = await run(c.args);
    if (r.code !== 0) throw new Error(`${c.name} failed (${r.code}): ${r.err}`);
    times[c.name].push(r.ms);
  }
}
const baseMs = median(base);
let missed = 0;
for (const c of cases) {
  const ms = median(times[c.name]);
  const ratio = ms / baseMs;
  const ok = c.target === undefined || ratio <= c.target;
  if (!ok) missed++;
  console.log(
    JSON.stringify({
      bench: 'startup',
      case: c.name,
      medianMs: +ms.toFixed(1),
      nodeMedianMs: +baseMs.toFixed(1),
      ratio: +ratio.toFixed(2),
      want: c.target === undefined ? 'report' : `<= ${c.target}`,
      ok,
    }),
  );
  process.stderr.write(
    `startup: ${c.name.padEnd(20)} ${ms.toFixed(0).padStart(5)} ms = ${ratio.toFixed(2)} × node -e 0 (${baseMs.toFixed(0)} ms)${c.target ? `, want ≤ ${c.target}` : ''}${ok ? '' : '  MISSED'}\n`,
  );
}
process.exitCode = missed ? 1 : 0;

/**
 * A test file's own fake identity provider (signing with the stack's JWT key, which Dovecot
 * trusts) plus the CLI helpers that go with it: admin calls, CLI runs recorded in a transcript
 * (for the "no secret in any output" checks), and a CLI run in the background that resolves when
 * stderr matches (a device code, a sign-in URL). Registers its own beforeAll/afterAll.
 */
import https from 'node:https';
import { afterAll, beforeAll, expect } from 'vitest';
import { backgroundCli, cliHome, type CliHome, type CliResult } from './cli.js';
import { stackEnv } from './stack-env.js';
import { startIdp, type IdpHandle } from './idp/index.mjs';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- IdP JSON answers, checked by the assertions
export type Json = any;

export interface TranscriptEntry {
  args: string[];
  stdout: string;
  stderr: string;
}

export function cliSession() {
  const env = stackEnv();
  let idp: IdpHandle | undefined;
  beforeAll(async () => {
    idp = await startIdp({ pkiDir: env.pkiDir });
  });
  afterAll(async () => {
    await idp?.close();
  });
  const transcript: TranscriptEntry[] = [];
  const url = () => {
    if (!idp) throw new Error('the identity provider is not started yet (use it inside tests or hooks)');
    return idp.url;
  };

  function adminGet(path: string): Promise<Json> {
    return new Promise((resolve, reject) => {
      https
        .get(new URL(`/_admin/${path}`, url()), { ca: env.ca }, (res) => {
          let t = '';
          res.on('data', (c: Buffer) => (t += c.toString()));
          res.on('end', () => resolve(JSON.parse(t)));
        })
        .on('error', reject);
    });
  }

  function admin(path: string, body: unknown): Promise<Json> {
    const data = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const r = https.request(
        new URL(`/_admin/${path}`, url()),
        { method: 'POST', ca: env.ca, headers: { 'content-type': 'application/json' } },
        (res) => {
          let t = '';
          res.on('data', (c: Buffer) => (t += c.toString()));
          res.on('end', () => {
            expect(res.statusCode, t).toBe(200);
            resolve(JSON.parse(t));
          });
        },
      );
      r.on('error', reject);
      r.end(data);
    });
  }

  function home(extra: NodeJS.ProcessEnv = {}): CliHome {
    return cliHome({
      NODE_EXTRA_CA_CERTS: env.caFile,
      DISPLAY: '',
      WAYLAND_DISPLAY: '',
      BROWSER: '',
      ...extra,
    });
  }

  async function cli(h: CliHome, args: string[], input?: string): Promise<CliResult> {
    const r = await h.run(args, { input, timeoutMs: 60_000 });
    transcript.push({ args, stdout: r.stdout, stderr: r.stderr });
    return r;
  }

  function background(h: CliHome, args: string[], waitFor: RegExp) {
    const { matched, done } = backgroundCli(h, args, waitFor, {
      killAfterMs: 90_000,
      onExit: (r) => transcript.push({ args, stdout: r.stdout, stderr: r.stderr }),
    });
    const early = done.then((r) => Promise.reject(new Error(`exited early (${r.code}): ${r.stderr}`)));
    return { matched: Promise.race([matched, early]), done };
  }

  return { env, url, transcript, adminGet, admin, home, cli, background };
}

/**
 * Helpers for the tests of the Graph client against the local Graph endpoint
 * (test/support/graph): token sources from the fake IdP, clients pointed at the endpoint, and
 * the delivered files of a Dovecot mailbox as bytes.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { GraphClient, type GraphClientOptions } from '../../src/mail/graph/index.js';
import { fixtures, idpMint, stackEnv } from '../support/stack-env.js';
import { stack } from './send-support.js';

export const G = 'https://graph.microsoft.com/';
export const ALICE = 'alice@contoso.test';
export const BOB = 'bob@contoso.test';
export const CAROL = 'carol@fabrikam.test';
export const SHARED = 'shared@contoso.test';
export const DAEMON = fixtures.microsoft.clients[2]!.clientId;
/** What a delegated Graph profile asks for (and the .Shared variants for a delegate). */
export const DELEGATED = [
  'Mail.Send',
  'Mail.ReadWrite',
  'Mail.Send.Shared',
  'Mail.ReadWrite.Shared',
  'User.Read',
].map((s) => G + s);

export const graphBase = (): string => `${stackEnv().graphUrl}/v1.0`;

export interface Tokens {
  user: string;
  getAccessToken(opts?: { forceRefresh?: boolean }): Promise<string>;
  /** how many tokens were minted, and how many of them forced */
  minted: number;
  forced: number;
}

/** A token source minting Graph tokens at the fake IdP (app-only when `app`), cached until forced. */
export function graphTokens(
  user: string,
  o: { scopes?: string[]; app?: boolean; first?: string } = {},
): Tokens {
  let cached: string | undefined = o.first;
  const t: Tokens = {
    user,
    minted: 0,
    forced: 0,
    async getAccessToken(opts) {
      if (opts?.forceRefresh) t.forced++;
      if (!cached || opts?.forceRefresh) {
        t.minted++;
        cached = o.app
          ? await idpMint({ clientId: DAEMON, scopes: [`${G}.default`] })
          : await idpMint({ user, scopes: o.scopes ?? DELEGATED });
      }
      return cached;
    },
  };
  return t;
}

/** A client on the local endpoint whose waits are recorded and skipped (no test waits for real time). */
export function graphClient(
  tokens: Tokens,
  o: Partial<GraphClientOptions> = {},
): { client: GraphClient; waits: number[] } {
  const waits: number[] = [];
  const client = new GraphClient({
    tokens,
    baseUrl: graphBase(),
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    ...o,
  });
  return { client, waits };
}

/** Delivered files of a mailbox that contain `tag`, as bytes; waits until `count` arrived. */
export async function delivered(
  address: string,
  tag: string,
  count = 1,
  timeoutMs = 20_000,
): Promise<Buffer[]> {
  const [local, domain] = address.toLowerCase().split('@') as [string, string];
  const dir = path.join(stack().mailDir, domain, local);
  const end = Date.now() + timeoutMs;
  for (;;) {
    const found: Buffer[] = [];
    for (const sub of ['new', 'cur']) {
      const d = path.join(dir, sub);
      if (!existsSync(d)) continue;
      for (const f of readdirSync(d)) {
        try {
          const b = readFileSync(path.join(d, f));
          if (b.includes(tag)) found.push(b);
        } catch {
          // moved from new/ to cur/ by an IMAP reader while we listed: found on the next round
        }
      }
    }
    if (found.length >= count || Date.now() > end) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The delivered file split into the trace fields the servers add in front (Return-Path,
 * Delivered-To, Received) and the rest, which must be the message as sent.
 */
export function traceAndRest(file: Buffer): { trace: string[]; rest: Buffer } {
  const s = file.toString('latin1');
  const lines = s.split(/(?<=\n)/);
  const trace: string[] = [];
  let i = 0;
  while (
    i < lines.length &&
    (/^(Return-Path|Delivered-To|Received):/i.test(lines[i]!) || (/^[ \t]/.test(lines[i]!) && trace.length))
  ) {
    if (/^[ \t]/.test(lines[i]!)) trace[trace.length - 1] += lines[i]!;
    else trace.push(lines[i]!);
    i++;
  }
  return { trace: trace.map((t) => t.split(':')[0]!), rest: Buffer.from(lines.slice(i).join(''), 'latin1') };
}

/** CRLF to LF: Dovecot stores maildir files with bare LF. */
export const lf = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');

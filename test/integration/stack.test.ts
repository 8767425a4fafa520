/**
 * The local mail stack itself, driven with nodemailer and imapflow directly (not the CLI): tokens
 * from the fake identity provider are accepted by Postfix (SASL through Dovecot) and Dovecot,
 * mail sent through Postfix can be read back over IMAP, and bad tokens are refused.
 * Runs only inside test/support/with-stack.sh (npm test); without the stack it fails.
 */
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import {
  fixtures,
  idpMint,
  imapAuthenticate,
  imapConnect,
  mintJwt,
  stackEnv,
  tamperClaims,
  tamperSignature,
  waitForMessage,
  startPrivateStack,
} from '../support/stack-env.js';

const env = stackEnv();
const alice = 'alice@contoso.test';
const bob = 'bob@contoso.test';
const carol = 'carol@fabrikam.test';

type Security = 'starttls' | 'tls';
/** Is PID a live process (a zombie counts as gone)? */
function alivePid(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
/** Dovecot's tagged reply to a refused AUTHENTICATE (RFC 5530 response code). */
const AUTH_FAILED = /^A1 NO \[AUTHENTICATIONFAILED\]/;
const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

function transport(user: string, accessToken: string, security: Security = 'starttls') {
  return nodemailer.createTransport({
    host: env.smtp.host,
    port: security === 'tls' ? env.smtp.smtpsPort : env.smtp.port,
    secure: security === 'tls',
    requireTLS: security === 'starttls',
    tls: { ca: env.ca },
    auth: { type: 'OAuth2', user, accessToken },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
}

/** The SMTP reply code of a refused AUTH (nodemailer's error.responseCode), or 'accepted'. */
async function smtpAuth(
  user: string,
  accessToken: string,
  security: Security = 'starttls',
): Promise<number | 'accepted'> {
  const t = transport(user, accessToken, security);
  try {
    await t.verify();
    return 'accepted';
  } catch (e) {
    const err = e as { code?: string; responseCode?: number; message?: string };
    if (err.code !== 'EAUTH') throw e;
    return err.responseCode ?? -1;
  } finally {
    t.close();
  }
}

function unique(label: string) {
  const id = randomUUID();
  return { subject: `${label} ${id}`, messageId: `<${id}@oauthmail.test>` };
}

async function sendAndReadBack(opts: {
  from: string;
  to: string;
  token: string;
  security: Security;
  label: string;
}) {
  const { subject, messageId } = unique(opts.label);
  const t = transport(opts.from, opts.token, opts.security);
  try {
    const info = await t.sendMail({
      from: opts.from,
      to: opts.to,
      subject,
      messageId,
      text: `sent by ${opts.from} over ${opts.security}\n`,
    });
    expect(info.accepted).toEqual([opts.to]);
    expect(info.response).toMatch(/^250 /);
  } finally {
    t.close();
  }
  const got = await waitForMessage(opts.to, { subject });
  expect(got.subject).toBe(subject);
  expect(got.messageId).toBe(messageId);
  expect(got.from).toBe(opts.from);
  expect(got.to).toEqual([opts.to]);
  expect(got.source).toContain(`sent by ${opts.from} over ${opts.security}`);
  return got;
}

describe('local mail stack', () => {
  it('has the fake identity provider running', () => {
    expect(env.idpUrl).toMatch(/^https:\/\/localhost:\d+$/);
  });

  it('has the local Graph endpoint running, checking tokens against the IdP', async () => {
    expect(env.graphUrl).toMatch(/^https:\/\/localhost:\d+$/);
    const health = await fetch(`${env.graphUrl}/_admin/health`);
    expect(health.status).toBe(200);
    const pid = Number(process.env.GRAPH_PID);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('graph/server.mjs');
    const token = await idpMint({ user: alice, scopes: ['https://graph.microsoft.com/User.Read'] });
    const me = await fetch(`${env.graphUrl}/v1.0/me`, { headers: { Authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { userPrincipalName: string }).userPrincipalName).toBe(alice);
  });

  it('start.sh starts the Graph endpoint in a private stack and stop.sh stops it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-graph-stack-'));
    const sh = path.join(import.meta.dirname, '..', 'support', 'stack');
    try {
      const vars = startPrivateStack(dir, env.pkiDir);
      const pid = Number(vars.GRAPH_PID);
      expect(vars.GRAPH_URL).toMatch(/^https:\/\/localhost:\d+$/);
      expect(vars.GRAPH_URL).not.toBe(env.graphUrl);
      expect(alivePid(pid)).toBe(true);
      expect((await fetch(`${vars.GRAPH_URL}/_admin/health`)).status).toBe(200);
      const stopped = spawnSync('bash', [path.join(sh, 'stop.sh'), dir], {
        stdio: 'ignore',
        timeout: 60_000,
      });
      expect(stopped.status).toBe(0);
      expect(alivePid(pid)).toBe(false);
      expect(existsSync(path.join(dir, 'graph-ready.json'))).toBe(false);
    } finally {
      spawnSync('bash', [path.join(sh, 'stop.sh'), dir], { stdio: 'ignore', timeout: 60_000 });
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('sends through Postfix submission (STARTTLS + XOAUTH2) with an IdP token and reads the message back over IMAP', async () => {
    const token = await idpMint({ provider: 'microsoft', user: alice });
    await sendAndReadBack({ from: alice, to: alice, token, security: 'starttls', label: 'starttls self' });
    // the recipient reads it with a token of their own, over IMAP with STARTTLS
    const { subject } = await sendAndReadBack({
      from: alice,
      to: bob,
      token,
      security: 'starttls',
      label: 'to bob',
    });
    const bobToken = await idpMint({ provider: 'microsoft', user: bob });
    const client = await imapConnect({ user: bob, accessToken: bobToken, security: 'starttls' });
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        const uids = await client.search({ subject }, { uid: true });
        expect(uids).toHaveLength(1);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
  });

  it('sends through SMTPS (implicit TLS) with a Google token and reads it back', async () => {
    const token = await idpMint({ provider: 'google', user: carol });
    await sendAndReadBack({ from: carol, to: carol, token, security: 'tls', label: 'smtps google' });
  });

  it('accepts XOAUTH2 and OAUTHBEARER on IMAP', async () => {
    const token = await idpMint({ provider: 'microsoft', user: alice });
    for (const mech of ['XOAUTH2', 'OAUTHBEARER'] as const) {
      const r = await imapAuthenticate(mech, alice, token);
      expect(r.tagged, mech).toMatch(/^A1 OK/);
    }
    const g = await idpMint({ provider: 'google', user: carol });
    expect((await imapAuthenticate('OAUTHBEARER', carol, g)).ok).toBe(true);
  });

  it('refuses an expired token (Postfix 535, Dovecot NO [AUTHENTICATIONFAILED])', async () => {
    const fromIdp = await idpMint({ provider: 'microsoft', user: alice, lifetime: -120 });
    const minted = mintJwt({ user: alice, lifetimeSeconds: -60 });
    for (const token of [fromIdp, minted]) {
      expect(await smtpAuth(alice, token)).toBe(535);
      const r = await imapAuthenticate('XOAUTH2', alice, token);
      expect(r.ok).toBe(false);
      expect(r.tagged).toMatch(AUTH_FAILED);
    }
  });

  it('refuses a tampered token: changed signature, or changed claims under the old signature', async () => {
    const good = await idpMint({ provider: 'microsoft', user: alice });
    expect(await smtpAuth(alice, good)).toBe('accepted');
    const badSig = tamperSignature(good);
    const badClaims = tamperClaims(good, { exp: Math.floor(Date.now() / 1000) + 86_400 * 365 });
    for (const token of [badSig, badClaims]) {
      expect(await smtpAuth(alice, token)).toBe(535);
      expect((await imapAuthenticate('XOAUTH2', alice, token)).tagged).toMatch(AUTH_FAILED);
      expect((await imapAuthenticate('OAUTHBEARER', alice, token)).ok).toBe(false);
    }
  });

  it("refuses alice's token used as bob", async () => {
    const token = await idpMint({ provider: 'microsoft', user: alice });
    expect(await smtpAuth(bob, token)).toBe(535);
    expect((await imapAuthenticate('XOAUTH2', bob, token)).tagged).toMatch(AUTH_FAILED);
    expect((await imapAuthenticate('OAUTHBEARER', bob, token)).ok).toBe(false);
    // a token minted with alice's email claim but bob's subject is still alice's
    expect(await smtpAuth(bob, mintJwt({ user: alice, claims: { sub: 'bob' } }))).toBe(535);
  });

  it('checks scope per service, issuer and key ID', async () => {
    const smtpOnly = await idpMint({
      provider: 'microsoft',
      user: alice,
      scopes: ['https://outlook.office.com/SMTP.Send'],
    });
    const imapOnly = await idpMint({
      provider: 'microsoft',
      user: alice,
      scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All'],
    });
    expect(await smtpAuth(alice, smtpOnly)).toBe('accepted');
    expect((await imapAuthenticate('XOAUTH2', alice, smtpOnly)).ok).toBe(false);
    expect(await smtpAuth(alice, imapOnly)).toBe(535);
    expect((await imapAuthenticate('XOAUTH2', alice, imapOnly)).ok).toBe(true);
    // Google tokens need https://mail.google.com/; a Microsoft scope under Google's issuer is not enough
    expect(await smtpAuth(carol, mintJwt({ user: carol, provider: 'google', scopes: ['SMTP.Send'] }))).toBe(
      535,
    );
    // an issuer the stack does not trust, and a key ID it does not know
    expect(await smtpAuth(alice, mintJwt({ user: alice, iss: 'https://login.example.test/' }))).toBe(535);
    expect((await imapAuthenticate('XOAUTH2', alice, mintJwt({ user: alice, kid: 'unknown-kid' }))).ok).toBe(
      false,
    );
    // a mailbox that is not in the fixtures gets no access even with a well-signed token
    expect(
      (await imapAuthenticate('XOAUTH2', 'mallory@contoso.test', mintJwt({ user: 'mallory@contoso.test' })))
        .ok,
    ).toBe(false);
  });

  it('checks the audience as Exchange Online does: Graph tokens are refused (535), Outlook ones accepted', async () => {
    // Entra reads a bare "SMTP.Send" as Microsoft Graph's permission: the token's audience is Graph
    // and it carries the right scope names, which Exchange Online still refuses (535 5.7.3).
    const graph = await idpMint({
      provider: 'microsoft',
      user: alice,
      scopes: ['SMTP.Send', 'IMAP.AccessAsUser.All'],
    });
    expect(claimsOf(graph)).toMatchObject({
      aud: 'https://graph.microsoft.com',
      scope: 'SMTP.Send IMAP.AccessAsUser.All',
    });
    const graphApp = await idpMint({
      provider: 'microsoft',
      scopes: ['https://graph.microsoft.com/.default'],
    });
    const graphRoles = mintJwt({
      user: alice,
      scopes: ['SMTP.SendAsApp', 'IMAP.AccessAsApp'],
      claims: { aud: 'https://graph.microsoft.com' },
    });
    // (Dovecot 2.3.19 compares `aud` only when the token has one: a token without it is not
    // refused here. Entra always sets it.)
    for (const token of [graph, graphApp, graphRoles]) {
      expect(await smtpAuth(alice, token)).toBe(535);
      expect((await imapAuthenticate('XOAUTH2', alice, token)).tagged).toMatch(AUTH_FAILED);
      expect((await imapAuthenticate('OAUTHBEARER', alice, token)).ok).toBe(false);
    }
    // both spellings of Exchange Online's audience are accepted, from the IdP and hand-made
    const outlook = await idpMint({ provider: 'microsoft', user: alice });
    const office365 = await idpMint({
      provider: 'microsoft',
      user: alice,
      scopes: [
        'https://outlook.office365.com/SMTP.Send',
        'https://outlook.office365.com/IMAP.AccessAsUser.All',
      ],
    });
    expect(claimsOf(outlook).aud).toBe('https://outlook.office.com');
    expect(claimsOf(office365).aud).toBe('https://outlook.office365.com');
    for (const token of [outlook, office365, mintJwt({ user: alice })]) {
      expect(await smtpAuth(alice, token)).toBe('accepted');
      expect((await imapAuthenticate('XOAUTH2', alice, token)).ok).toBe(true);
    }
    await sendAndReadBack({
      from: alice,
      to: alice,
      token: office365,
      security: 'starttls',
      label: 'office365 aud',
    });
  });

  it('accepts app-only Entra tokens for the mailbox the app may use', async () => {
    const daemon = fixtures.microsoft.clients.find((c) => c.clientId.startsWith('3333'));
    expect(daemon).toBeDefined();
    const token = await idpMint({
      provider: 'microsoft',
      clientId: daemon!.clientId,
      scopes: ['https://outlook.office365.com/.default'],
    });
    expect(await smtpAuth(alice, token)).toBe('accepted');
    expect((await imapAuthenticate('XOAUTH2', alice, token)).ok).toBe(true);
    expect(await smtpAuth(bob, token)).toBe(535);
  });

  it('does not relay for unauthenticated clients and offers AUTH only after STARTTLS', async () => {
    const anon = nodemailer.createTransport({
      host: env.smtp.host,
      port: env.smtp.port,
      requireTLS: true,
      tls: { ca: env.ca },
    });
    try {
      await expect(anon.sendMail({ from: alice, to: bob, subject: 'anon', text: 'x' })).rejects.toMatchObject(
        {
          responseCode: expect.any(Number),
        },
      );
      const err = await anon
        .sendMail({ from: alice, to: bob, subject: 'anon', text: 'x' })
        .catch((e: unknown) => e);
      expect((err as { responseCode: number }).responseCode).toBeGreaterThanOrEqual(500);
    } finally {
      anon.close();
    }
    // without STARTTLS the submission port takes no mail and offers no AUTH
    const plain = nodemailer.createTransport({
      host: env.smtp.host,
      port: env.smtp.port,
      secure: false,
      ignoreTLS: true,
      auth: { type: 'OAuth2', user: alice, accessToken: mintJwt({ user: alice }) },
    });
    try {
      const err = await plain
        .sendMail({ from: alice, to: bob, subject: 'plain', text: 'x' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as { responseCode?: number }).responseCode).toBe(530);
    } finally {
      plain.close();
    }
  });
});

/**
 * Checks shared by the provider end-to-end tests that run on a cliSession (google-auth,
 * custom-provider): headless Chromium, a token's claims, `token` and `export` through the
 * recorded CLI (every token seen joins the file's secrets), Dovecot and Postfix accepting a token,
 * and the final "no secret in any output" sweep over the transcript.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import nodemailer from 'nodemailer';
import { type CliHome, type CliResult } from './cli.js';
import { imapConnect, type StackEnv } from './stack-env.js';
import { type TranscriptEntry } from './cli-session.js';

/** The payload of a JWT. */
export const claims = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

/** A page in a fresh headless Chromium (self-signed certificates accepted), closed afterwards. */
export async function withBrowser<T>(fn: (page: import('playwright-core').Page) => Promise<T>): Promise<T> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    return await fn(await context.newPage());
  } finally {
    await browser.close();
  }
}

/** Open the IdP's sign-in page at `url` and sign in (the consent page comes next). */
export async function signInOnPage(
  page: import('playwright-core').Page,
  url: string,
  user: { email: string; password: string },
): Promise<void> {
  await page.goto(url);
  await page.fill('#username', user.email);
  await page.fill('#password', user.password);
  await page.click('#signin');
}

/**
 * The checks bound to one session: `cli` is the session's recorded run, `secrets` the file's set
 * of everything that must never be printed.
 */
export function providerChecks(
  session: {
    env: Pick<StackEnv, 'smtp' | 'ca'>;
    cli: (h: CliHome, args: string[], input?: string) => Promise<CliResult>;
    transcript: TranscriptEntry[];
  },
  secrets: Set<string>,
) {
  const { env, cli, transcript } = session;

  /** `oauthmail token NAME`: exit 0, the token alone on one line. */
  async function token(h: CliHome, name: string, extra: string[] = []): Promise<string> {
    const r = await cli(h, ['token', name, ...extra]);
    expect(r.code, r.stderr).toBe(0);
    const t = r.stdout.trim();
    expect(r.stdout).toBe(t + '\n');
    secrets.add(t);
    return t;
  }

  /** The stored refresh token, through `oauthmail export NAME --yes`. */
  async function refreshTokenOf(h: CliHome, name: string): Promise<string> {
    const r = await cli(h, ['export', name, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { access_token: string; refresh_token: string };
    secrets.add(j.access_token);
    secrets.add(j.refresh_token);
    return j.refresh_token;
  }

  /** Dovecot lets `user` open INBOX with the token. */
  async function imapAccepts(user: string, accessToken: string) {
    const c = await imapConnect({ user, accessToken });
    try {
      const box = await c.mailboxOpen('INBOX');
      expect(box.path).toBe('INBOX');
    } finally {
      await c.logout();
    }
  }

  /** Postfix accepts a message from `user` to itself with the token; returns its subject. */
  async function smtpSends(user: string, accessToken: string): Promise<string> {
    const subject = `oauthmail google test ${randomUUID()}`;
    const t = nodemailer.createTransport({
      host: env.smtp.host,
      port: env.smtp.port,
      secure: false,
      requireTLS: true,
      tls: { ca: env.ca },
      auth: { type: 'OAuth2', user, accessToken },
    });
    try {
      const info = await t.sendMail({ from: user, to: user, subject, text: 'hello from a Google token' });
      expect(info.accepted).toContain(user);
    } finally {
      t.close();
    }
    return subject;
  }

  /** No secret in anything printed, except the stdout of `token` and `export`. */
  function expectNoSecretsPrinted() {
    expect(transcript.length).toBeGreaterThan(10);
    for (const e of transcript) {
      const printsToken = e.args[0] === 'token' || e.args[0] === 'export';
      const text = printsToken ? e.stderr : e.stdout + e.stderr;
      for (const s of secrets) {
        if (s && s.length >= 8) expect(text.includes(s), `leak in: ${e.args.join(' ')}`).toBe(false);
      }
    }
  }

  return { token, refreshTokenOf, imapAccepts, smtpSends, expectNoSecretsPrinted };
}

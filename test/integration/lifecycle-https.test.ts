// The HTTPS loopback redirect (issue 9): an app registration that allows only
// https://localhost:PORT/ redirects. oauthmail serves the redirect with its own per-install
// certificate, explains the browser warning with the fingerprint, and signs in.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import https from 'node:https';
import net from 'node:net';
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  addProfile,
  admin,
  ALICE,
  background,
  expectNoLeaks,
  fixtures,
  home,
  type Lab,
  req,
  startLab,
  stopLab,
} from './lifecycle-support.js';

let lab: Lab;
let port: number;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  port = await freePort();
  const f = structuredClone(fixtures);
  f.microsoft.clients[0]!.redirectUris = [`https://localhost:${port}/`];
  lab = await startLab(f);
}, 60_000);

afterAll(async () => {
  if (lab) expectNoLeaks(lab);
  await stopLab(lab);
});

/** POST the form_post page's hidden fields to its action, trusting only `ca`. */
function submitFormPost(html: string, ca: string): Promise<{ status: number; text: string }> {
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error(`no form_post page: ${html.slice(0, 200)}`);
  const fields = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields.set(
      m[1]!,
      m[2]!
        .replace(/&amp;/g, '&')
        .replace(/&quot;/g, '"')
        .replace(/&#39;/g, "'")
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>'),
    );
  }
  const body = fields.toString();
  return new Promise((resolve, reject) => {
    const r = https.request(
      action.replace(/&amp;/g, '&'),
      { method: 'POST', ca, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

describe('HTTPS loopback redirect', () => {
  it('signs in through https://localhost:PORT/ with the per-install certificate, whose fingerprint it prints', async () => {
    expect((await admin(lab, 'reset', {})).status).toBe(200);
    expect((await admin(lab, 'config', { autoConsent: true })).status).toBe(200);
    const h = home(lab);
    await addProfile(lab, h, 'work', ['--redirect-uri', `https://localhost:${port}/`]);

    const bg = background(
      lab,
      h,
      ['login', 'work', '--no-browser', '--timeout', '60'],
      /(https:\/\/\S+authorize\S+)/,
    );
    const url = (
      await Promise.race([
        bg.matched,
        bg.done.then((r) => Promise.reject(new Error(`login exited early: ${r.stderr}`))),
      ])
    )[1]!;
    expect(new URL(url).searchParams.get('redirect_uri')).toBe(`https://localhost:${port}/`);

    const certFile = join(h.dir, 'data', 'loopback-tls', 'cert.pem');
    expect(statSync(join(h.dir, 'data', 'loopback-tls', 'key.pem')).mode & 0o777).toBe(0o600);
    const cert = readFileSync(certFile, 'utf8');
    const x = new X509Certificate(cert);
    expect(x.subjectAltName).toMatch(/DNS:localhost/);
    const fp = createHash('sha256')
      .update(x.raw)
      .digest('hex')
      .toUpperCase()
      .replace(/(..)(?!$)/g, '$1:');

    // the person signs in; the IdP answers with a form_post page to the https loopback
    const u = new URL(url);
    const page = await req(lab, 'GET', u.pathname + u.search);
    const txn = /name="txn" value="([^"]+)"/.exec(page.text)?.[1];
    const form = new URLSearchParams({ txn: txn!, username: ALICE.upn, password: ALICE.password }).toString();
    const posted = await req(lab, 'POST', '/_flow/login', form, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(posted.status).toBe(200);
    const landing = await submitFormPost(posted.text, cert);
    expect(landing.status).toBe(200);

    const r = await bg.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(fp);
    expect(r.stderr).toMatch(/Your browser warns that it does not trust it/);
    expect(r.stderr).toMatch(/Signed in to work as alice@contoso\.test/);
    const t = await h.run(['token', 'work']);
    expect(t.code, t.stderr).toBe(0);
    lab.secrets.add(t.stdout.trim());
  }, 60_000);
});

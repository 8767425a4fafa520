// The demo's steps, run inside the local stack (test/support/demo.sh). Each step prints the
// oauthmail command it runs, so a person can follow and repeat it. No token is printed.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'bin', 'oauthmail.js');
const fixtures = JSON.parse(readFileSync(path.join(root, 'test/support/fixtures.json'), 'utf8'));
const tenant = fixtures.microsoft.tenantId;
const clientId = fixtures.microsoft.clients[0].clientId;
const user = 'alice@contoso.test';
const idp = process.env.IDP_URL;
if (!idp) throw new Error('run through `npm run demo` (test/support/demo.sh), which starts the local stack');

const home = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-demo-'));
const env = {
  ...process.env,
  OAUTHMAIL_CONFIG_DIR: path.join(home, 'config'),
  OAUTHMAIL_DATA_DIR: path.join(home, 'data'),
  DISPLAY: '',
  WAYLAND_DISPLAY: '',
};

function say(text) {
  process.stderr.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

function run(args, { onStderr, quietStdout = false } = {}) {
  process.stderr.write(
    `$ oauthmail ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(' ')}\n`,
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (!quietStdout) process.stdout.write(d);
    });
    child.stderr.on('data', (d) => {
      process.stderr.write(d);
      onStderr?.(d.toString());
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`oauthmail ${args[0]} exited ${code}`)),
    );
  });
}

function admin(p, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(`/_admin/${p}`, idp),
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`admin ${p}: ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const subject = `oauthmail demo ${new Date().toISOString()}`;

say('1. a profile for the local Entra ID look-alike, Postfix and Dovecot');
await admin('config', { deviceCodeInterval: 1 });
await run([
  'profile',
  'add',
  'demo',
  '--client-id',
  clientId,
  '--authority',
  `${idp}/${tenant}/`,
  '--user',
  user,
  '--smtp',
  `localhost:${process.env.SMTP_PORT}`,
  '--smtp-security',
  'starttls',
  '--imap',
  `localhost:${process.env.IMAPS_PORT}`,
  '--imap-security',
  'tls',
]);

say('2. sign in with a device code (the demo approves it as alice at the identity provider)');
let approved = false;
await run(['login', 'demo', '--device'], {
  onStderr: (text) => {
    const m = /enter the code:? (\S+)/i.exec(text);
    if (m && !approved) {
      approved = true;
      admin('device', { user_code: m[1], action: 'approve', user }).catch((e) =>
        process.stderr.write(`${e}\n`),
      );
    }
  },
});
await run(['status', 'demo']);

say('3. send a message to alice over SMTP with XOAUTH2');
await run([
  'send',
  '-p',
  'demo',
  '--to',
  user,
  '--subject',
  subject,
  '--body',
  'Sent by npm run demo through Postfix, delivered by Dovecot.',
]);

say('4. fetch it back over IMAP with XOAUTH2');
const out = path.join(home, 'mail');
await run(['fetch', '-p', 'demo', '--subject', subject, '--out', out, '--format', 'eml']);
const files = readdirSync(out).filter((f) => f.endsWith('.eml'));
const found = files.map((f) => readFileSync(path.join(out, f), 'utf8')).find((t) => t.includes(subject));
if (!found) throw new Error('the message did not come back');
process.stderr.write(`\nfetched ${files.length} message(s) into ${out}; the demo message is there:\n`);
process.stderr.write(
  found
    .split(/\r?\n\r?\n/)[0]
    .split(/\r?\n/)
    .filter((l) => /^(From|To|Subject|Message-ID):/i.test(l))
    .join('\n') + '\n',
);
say('done: sign-in, send and fetch all worked');

// README recipes, each tried with the real program from Debian: a profile signed in by device
// code at the stack's fake identity provider, the program fetching its token through
// `oauthmail token` (or `oauthmail exec`), and the local Postfix/Dovecot validating it.
// The recipes are read from README.md itself (readmeRecipe): only the host, port, user and CA are
// replaced (localize), and what a test needs beyond the recipe is appended, never edited in, so
// the README cannot drift from what is tested. No token may show up in anything printed.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, cliHome, type CliHome } from '../support/cli.js';
import { stack, waitForMail, type Stack } from './send-support.js';
import { signInStackProfile } from '../support/signin.js';

const ALICE = 'alice@contoso.test';

let s: Stack;
let h: CliHome;
const transcript: string[] = [];
const secrets = new Set<string>();
const tag = () => `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

/** Run a program with the CLI home's environment; output goes to the transcript. */
function run(
  cmd: string,
  args: string[],
  input = '',
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, {
    env: { ...h.env, HOME: h.dir, ...opts.env },
    input,
    encoding: 'utf8',
    timeout: 30_000,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  transcript.push(`$ ${cmd} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

beforeAll(async () => {
  s = stack();
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  secrets.add(await signInStackProfile(h, s.idpUrl, `${s.smtpHost}:${s.smtpPort}`));
}, 60_000);

afterAll(() => {
  const all = transcript.join('\n');
  for (const sec of secrets)
    if (sec) expect(all.includes(sec), 'a token leaked into program output').toBe(false);
  expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
});

const OAUTHMAIL = `${process.execPath} ${BIN}`;

/** The fenced block of README.md whose first line is `first` (the recipe's comment line). */
function readmeRecipe(first: string): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  const found = blocks.filter((b) => b.split('\n')[0] === first);
  expect(found, `README.md has one recipe starting with "${first}"`).toHaveLength(1);
  return found[0]!;
}

/** The recipe pointed at the stack: host, ports, user and the oauthmail command; nothing else. */
function localize(recipe: string): string {
  return recipe
    .replaceAll('me%40contoso.com', encodeURIComponent(ALICE))
    .replaceAll('me@contoso.com', ALICE)
    .replace(/\b(smtp|outlook)\.office365\.com\b/g, s.smtpHost)
    .replace(/^port 587$/m, `port ${s.smtpPort}`)
    .replace(/^Port 993$/m, `Port ${imapsPort()}`)
    .replaceAll(':587/', `:${s.smtpPort}/`)
    .replaceAll(':993/', `:${imapsPort()}/`)
    .replaceAll('"oauthmail ', `"${OAUTHMAIL} `);
}

describe('README recipes are read from README.md', () => {
  it('msmtp: comments only on their own line (msmtp refuses a comment after a value)', () => {
    const r = readmeRecipe('# msmtp (~/.msmtprc)');
    for (const line of r.split('\n')) expect(line).not.toMatch(/^\s*[^#\s].*\s#/);
  });
});

describe('msmtp (passwordeval "oauthmail token ...")', () => {
  for (const mech of ['xoauth2', 'oauthbearer'] as const) {
    it(`sends through Postfix with auth ${mech}`, () => {
      const t = tag();
      const conf = path.join(h.dir, `msmtprc-${mech}`);
      // The README recipe, with the stack's host, port, user and CA (and the other mechanism it names).
      const recipe = localize(readmeRecipe('# msmtp (~/.msmtprc)'));
      expect(recipe).toMatch(/^auth xoauth2$/m);
      writeFileSync(conf, recipe.replace(/^auth xoauth2$/m, `auth ${mech}`) + `tls_trust_file ${ca()}\n`);
      chmodSync(conf, 0o600);
      const msg = `From: ${ALICE}\nTo: bob@contoso.test\nSubject: msmtp ${t}\n\nsent by msmtp with ${mech} ${t}\n`;
      const r = run('msmtp', ['-C', conf, '-a', 'work', 'bob@contoso.test'], msg);
      expect(r.code, r.stderr).toBe(0);
      return waitForMail(s, 'bob@contoso.test', t, 1).then((found) => {
        expect(found).toHaveLength(1);
        expect(found[0]!.text).toMatch(new RegExp(`Subject: msmtp ${t}`));
      });
    });
  }

  it('a profile that needs a sign-in makes msmtp fail, and the fix is on stderr', () => {
    const conf = path.join(h.dir, 'msmtprc-nosignin');
    writeFileSync(
      conf,
      [
        'account work',
        `host ${s.smtpHost}`,
        `port ${s.smtpPort}`,
        'tls on',
        'tls_starttls on',
        `tls_trust_file ${path.join(s.pkiDir, 'ca.pem')}`,
        `from ${ALICE}`,
        `user ${ALICE}`,
        'auth xoauth2',
        `passwordeval "${process.execPath} ${BIN} token nosuchprofile"`,
        '',
      ].join('\n'),
    );
    chmodSync(conf, 0o600);
    const r = run('msmtp', ['-C', conf, '-a', 'work', 'bob@contoso.test'], 'Subject: x\n\nx\n');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no profile named "nosuchprofile"/);
  });
});

const ca = () => path.join(s.pkiDir, 'ca.pem');
const MUTT_RECIPE = '# mutt / neomutt (neomutt 2022: use xoauth2; its OAUTHBEARER rejects tokens over ~1 KB)';
const imapsPort = () => Number(process.env.IMAPS_PORT);

/** Put a message with `t` into alice's inbox (msmtp, as above) for the IMAP recipes. */
async function mailToAlice(t: string): Promise<void> {
  const conf = path.join(h.dir, `msmtprc-alice-${t}`);
  writeFileSync(
    conf,
    [
      'account work',
      `host ${s.smtpHost}`,
      `port ${s.smtpPort}`,
      'tls on',
      'tls_starttls on',
      `tls_trust_file ${ca()}`,
      `from ${ALICE}`,
      `user ${ALICE}`,
      'auth xoauth2',
      `passwordeval "${OAUTHMAIL} token work"`,
      '',
    ].join('\n'),
  );
  chmodSync(conf, 0o600);
  const r = run(
    'msmtp',
    ['-C', conf, '-a', 'work', ALICE],
    `From: ${ALICE}\nTo: ${ALICE}\nSubject: ${t}\n\nbody ${t}\n`,
  );
  expect(r.code, r.stderr).toBe(0);
  expect(await waitForMail(s, ALICE, t, 1)).toHaveLength(1);
}

describe('mutt and neomutt (smtp_oauth_refresh_command)', () => {
  for (const [prog, mech] of [
    ['mutt', 'oauthbearer'],
    ['mutt', 'xoauth2'],
    // neomutt 20220429 (Debian 12) refuses OAUTHBEARER tokens over about 1 KB ("OAUTH token is
    // too big"), and Microsoft's are bigger: the README recipe uses xoauth2 for neomutt.
    ['neomutt', 'xoauth2'],
  ] as const) {
    it(`${prog} sends in batch mode with smtp_authenticators=${mech}`, async () => {
      const t = tag();
      const rc = path.join(h.dir, `${prog}rc-${mech}`);
      // the README recipe (with the other mechanism for mutt's OAUTHBEARER), plus the test CA and
      // batch-mode settings (no copy to a Sent folder)
      const recipe = localize(readmeRecipe(MUTT_RECIPE));
      writeFileSync(
        rc,
        recipe.replace('set smtp_authenticators = "xoauth2"', `set smtp_authenticators = "${mech}"`) +
          [`set ssl_ca_certificates_file = "${ca()}"`, 'set record = ""', 'set copy = no', ''].join('\n'),
      );
      const r = run(
        prog,
        ['-n', '-F', rc, '-s', `${prog} ${t}`, '--', 'bob@contoso.test'],
        `sent by ${prog} ${t}\n`,
      );
      expect(r.code, r.stderr + r.stdout).toBe(0);
      const found = await waitForMail(s, 'bob@contoso.test', t, 1);
      expect(found).toHaveLength(1);
      expect(found[0]!.text).toMatch(new RegExp(`Subject: ${prog} ${t}`));
    });
  }
});

describe('mutt (imap_oauth_refresh_command)', () => {
  it('opens the IMAP inbox with xoauth2 and pipes a message out (mutt runs in a pty)', async () => {
    const t = tag();
    await mailToAlice(t);
    const out = path.join(h.dir, `mutt-imap-${t}.eml`);
    const rc = path.join(h.dir, `muttrc-imap-${t}`);
    writeFileSync(
      rc,
      localize(readmeRecipe(MUTT_RECIPE)) +
        [
          `set ssl_ca_certificates_file = "${ca()}"`,
          'set quit = yes',
          'set wait_key = no',
          'set header_cache = ""',
          '',
        ].join('\n'),
    );
    const push = `push "<limit>~s ${t}<enter><pipe-message>cat > ${out}<enter><quit>"`;
    // mutt needs a terminal: script(1) gives it a pty
    const r = run('script', ['-qec', `mutt -n -F ${rc} -e '${push}'`, '/dev/null'], '', {
      env: { TERM: 'xterm' },
    });
    expect(r.code, r.stderr + r.stdout.slice(-500)).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(new RegExp(`Subject: ${t}`));
  });
});

// fetchmail: Debian 12's 6.4.37 has no OAUTHBEARER/XOAUTH2 (its rc parser refuses `auth
// oauthbearer`), so there is no recipe to try here; see the README note.

describe('isync/mbsync (PassCmd with the XOAUTH2 SASL plugin)', () => {
  it('pulls the inbox into a Maildir', async () => {
    const t = tag();
    await mailToAlice(t);
    const maildir = path.join(h.dir, `maildir-${t}`);
    mkdirSync(maildir, { recursive: true });
    const rc = path.join(h.dir, `mbsyncrc-${t}`);
    writeFileSync(
      rc,
      [
        localize(
          readmeRecipe(
            '# isync/mbsync (~/.mbsyncrc); needs an XOAUTH2 SASL plugin: apt install libsasl2-modules-kdexoauth2',
          ),
        ).trimEnd(),
        `CertificateFile ${ca()}`,
        '',
        'IMAPStore work-remote',
        'Account work',
        '',
        'MaildirStore work-local',
        `Path ${maildir}/`,
        `Inbox ${maildir}/INBOX`,
        '',
        'Channel work',
        'Far :work-remote:',
        'Near :work-local:',
        'Patterns INBOX',
        'Create Near',
        'Sync Pull',
        'SyncState *',
        '',
      ].join('\n'),
    );
    const r = run('mbsync', ['-c', rc, 'work']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const texts: string[] = [];
    for (const sub of ['new', 'cur']) {
      const d = path.join(maildir, 'INBOX', sub);
      if (existsSync(d)) for (const f of readdirSync(d)) texts.push(readFileSync(path.join(d, f), 'utf8'));
    }
    expect(texts.some((x) => x.includes(`Subject: ${t}`))).toBe(true);
  });
});

describe('git send-email (--sendmail-cmd "oauthmail sendmail")', () => {
  it('sends a patch through oauthmail sendmail', async () => {
    const t = tag();
    const repo = path.join(h.dir, `repo-${t}`);
    mkdirSync(repo);
    const git = (...a: string[]) => {
      const r = run('git', a, '', {
        cwd: repo,
        env: {
          GIT_AUTHOR_NAME: 'Alice',
          GIT_AUTHOR_EMAIL: ALICE,
          GIT_COMMITTER_NAME: 'Alice',
          GIT_COMMITTER_EMAIL: ALICE,
        },
      });
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    git('init', '-q');
    writeFileSync(path.join(repo, 'README'), `hello ${t}\n`);
    git('add', 'README');
    git('commit', '-q', '-m', `patch ${t}`);
    git('format-patch', '-1', '-o', 'out');
    const patch = path.join(repo, 'out', readdirSync(path.join(repo, 'out'))[0]!);
    // the README's line, run as it is (with this checkout's oauthmail)
    const setup = localize(
      readmeRecipe("# git send-email, through oauthmail's sendmail mode (no SASL module needed)"),
    ).replace('"oauthmail ', `"${OAUTHMAIL} `);
    const sh = run('sh', ['-c', setup.replace(/"oauthmail /g, `"${OAUTHMAIL} `)], '', { cwd: repo });
    expect(sh.code, sh.stderr).toBe(0);
    git('send-email', '--to=bob@contoso.test', `--from=${ALICE}`, '--confirm=never', '--quiet', patch);
    const found = await waitForMail(s, 'bob@contoso.test', `patch ${t}`, 1);
    expect(found).toHaveLength(1);
  });
});

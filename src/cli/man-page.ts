/**
 * The man page (oauthmail(1)), generated from the same help text as `--help` and the help
 * topics, so that the two never disagree: `npm run build` writes it to dist/oauthmail.1 through the
 * hidden `oauthmail __man`, and package.json's "man" installs it with the package.
 */
import type { Command } from 'commander';

/** Text for roff: backslashes doubled, and a line that starts with . or ' protected. */
const roff = (s: string) =>
  s
    .replace(/\\/g, '\\e')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');

/** What `--help` prints for `cmd`, with the text added after it (examples, notes). */
function helpText(cmd: Command): string {
  let out = '';
  const prev = cmd.configureOutput();
  cmd.configureOutput({ ...prev, writeOut: (s) => (out += s) });
  try {
    cmd.outputHelp();
  } finally {
    cmd.configureOutput(prev);
  }
  return out.trimEnd();
}

function commandsOf(cmd: Command, prefix: string): Array<{ path: string; cmd: Command }> {
  const out: Array<{ path: string; cmd: Command }> = [];
  for (const c of cmd.commands) {
    if (c.name().startsWith('_') || c.name() === 'help') continue;
    const p = `${prefix} ${c.name()}`;
    out.push({ path: p, cmd: c });
    out.push(...commandsOf(c, p));
  }
  return out;
}

export function renderManPage(
  program: Command,
  o: { version: string; date: string; topics: Record<string, string> },
): string {
  const lines = [
    `.TH OAUTHMAIL 1 "${o.date}" "oauthmail ${o.version}" "User Commands"`,
    '.SH NAME',
    'oauthmail \\- OAuth 2.0 tokens for mail (Microsoft Entra ID, Google), SMTP and IMAP with XOAUTH2',
    '.SH SYNOPSIS',
    '.B oauthmail',
    '[\\fIoptions\\fR] \\fIcommand\\fR [\\fIargs\\fR]',
    '.SH DESCRIPTION',
    roff(program.description()),
    '.PP',
    'The sections below are the help of each command, as `oauthmail COMMAND --help` prints it.',
    '.SH OPTIONS',
    '.nf',
    roff(helpText(program)),
    '.fi',
    '.SH COMMANDS',
  ];
  for (const { path, cmd } of commandsOf(program, 'oauthmail')) {
    lines.push(`.SS "${path}"`, '.nf', roff(helpText(cmd)), '.fi');
  }
  lines.push(
    '.SH "EXIT STATUS"',
    '.nf',
    roff(o.topics['exit-codes'] ?? ''),
    '.fi',
    '.SH ENVIRONMENT',
    '.nf',
    roff(o.topics.environment ?? ''),
    '.fi',
    '.SH "SEE ALSO"',
    '.BR msmtp (1),',
    '.BR mutt (1),',
    '.BR mbsync (1)',
    '',
  );
  return lines.join('\n');
}

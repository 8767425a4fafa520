/**
 * The root command: global flags, help topics, and the list of commands. Each command lives in
 * src/cli/commands/<name>.ts and registers its flags here; its action imports the core code it
 * needs only when it runs, so that `oauthmail --version` and `oauthmail token` stay quick.
 */
import { Command, Option } from 'commander';
import { EXIT_CODE_TABLE, UsageError } from '../errors/index.js';
import type { Context } from './context.js';
import { registerProfile } from './commands/profile/index.js';
import { registerMailboxes } from './commands/mailboxes.js';
import { registerList } from './commands/list.js';
import { registerFetch } from './commands/fetch.js';
import { registerWatch } from './commands/watch.js';
import { registerSend } from './commands/send.js';
import { registerSendmail } from './commands/sendmail.js';
import { registerLogin } from './commands/login.js';
import { registerToken } from './commands/token.js';
import { registerStatus } from './commands/status.js';
import { registerLogout } from './commands/logout.js';
import { registerImport } from './commands/import.js';
import { registerExport } from './commands/export.js';
import { registerTest } from './commands/test.js';
import { registerScopes } from './commands/scopes.js';
import { registerConsentUrl } from './commands/consent-url.js';
import { registerGuide } from './commands/guide.js';
import { registerRefresh } from './commands/refresh.js';
import { registerExec } from './commands/exec.js';
import { registerQueue } from './commands/queue.js';
import { registerRelay } from './commands/relay.js';
import { registerCompletion } from './commands/completion.js';

import { VERSION } from '../util/version.js';
export { VERSION };

export const HELP_TOPICS: Record<string, string> = {
  'exit-codes': [
    'Exit codes (stable; scripts and cron jobs can rely on them):',
    '',
    ...EXIT_CODE_TABLE.map((e) => `  ${String(e.code).padEnd(4)}${e.name.padEnd(13)}${e.meaning}`),
    '',
    'Temporary failures (6) are safe to retry. For 4, run the command printed on stderr.',
  ].join('\n'),
  environment: [
    'Environment variables:',
    '',
    '  OAUTHMAIL_PROFILE        profile to use when -p is not given (before the default profile)',
    '  OAUTHMAIL_CONFIG_DIR     folder of config.json (default: $XDG_CONFIG_HOME/oauthmail or ~/.config/oauthmail)',
    '  OAUTHMAIL_DATA_DIR       folder of file-stored secrets and locks (default: $XDG_DATA_HOME/oauthmail)',
    '  OAUTHMAIL_CLIENT_SECRET  client secret for `profile add` / `profile secret` (never pass secrets in argv)',
    '  OAUTHMAIL_PASSPHRASE     encrypt file-stored secrets with this passphrase (AES-256-GCM, scrypt)',
    '  OAUTHMAIL_PASSPHRASE_FILE  read that passphrase from this file (else $CREDENTIALS_DIRECTORY/oauthmail-passphrase, systemd)',
    '  OAUTHMAIL_QUEUE_MAX_AGE  queued messages older than this become dead letters (default 5d)',
    '  OAUTHMAIL_QUEUE_WARN_AGE `status` exits 6 when a queued message waits longer than this (default 1h)',
    '  OAUTHMAIL_KEYCHAIN_TIMEOUT_MS  how long to wait for the OS keychain (default 3000)',
    '  OAUTHMAIL_HEALTH_IDLE_WARN_SECONDS  `status` warns when a Microsoft refresh token is unused this long (default 60 days)',
    "  OAUTHMAIL_HEALTH_IDLE_LIMIT_SECONDS Microsoft's inactivity limit used in that warning (default 90 days)",
    '  OAUTHMAIL_HEALTH_SHORT_LIFETIME_SECONDS  a sign-in that lasted at most this long suggests Google "Testing" status (default 7.5 days)',
    '  OAUTHMAIL_HEALTH_SECRET_WARN_DAYS  warn this many days before a client secret expires (default 30)',
    '  NO_COLOR                 no colours on stderr',
    '  CI                       when set, never prompt (as with --no-input)',
  ].join('\n'),
};

export function buildProgram(ctx: Context): Command {
  const program = new Command('oauthmail');
  program
    .description(
      'Get OAuth 2.0 tokens from Microsoft Entra ID and Google, keep them safe,\nand send and fetch mail over SMTP and IMAP with SASL XOAUTH2.',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .option('-p, --profile <name>', 'profile to use (default: $OAUTHMAIL_PROFILE, then the default profile)')
    .option('--json', 'machine-readable output on stdout')
    .option('-v, --verbose', 'more detail on stderr (secrets are always redacted)')
    .addOption(new Option('--no-input', 'never prompt; fail with the command to run instead'))
    .showSuggestionAfterError(true)
    .helpCommand(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      outputError: (s, write) => write(`oauthmail: ${s.replace(/^error: /, '')}`),
    })
    .addHelpText(
      'after',
      `
Examples:
  $ oauthmail profile add work --provider microsoft --tenant contoso.com --client-id ID --user me@contoso.com
  $ oauthmail login work
  $ oauthmail token work            # prints an access token, nothing else

Help topics: oauthmail help exit-codes | oauthmail help environment`,
    );

  program.hook('preAction', (_root, action) => {
    const g = action.optsWithGlobals<{ json?: boolean; verbose?: boolean; input?: boolean }>();
    ctx.io.json = !!g.json;
    ctx.io.verbose = !!g.verbose;
    ctx.io.noInput = g.input === false;
  });

  registerProfile(program, ctx);
  registerMailboxes(program, ctx);
  registerList(program, ctx);
  registerFetch(program, ctx);
  registerWatch(program, ctx);
  registerSend(program, ctx);
  registerSendmail(program, ctx);
  registerLogin(program, ctx);
  registerToken(program, ctx);
  registerStatus(program, ctx);
  registerLogout(program, ctx);
  registerImport(program, ctx);
  registerExport(program, ctx);
  registerTest(program, ctx);
  registerScopes(program, ctx);
  registerConsentUrl(program, ctx);
  registerGuide(program, ctx);
  registerRefresh(program, ctx);
  registerExec(program, ctx);
  registerQueue(program, ctx);
  registerRelay(program, ctx);
  registerCompletion(program, ctx);

  program
    .command('__man', { hidden: true })
    .description('print the man page (npm run build writes it to dist/oauthmail.1)')
    .action(async () => {
      const { renderManPage } = await import('./man-page.js');
      const date = new Date(Number(ctx.env.SOURCE_DATE_EPOCH ?? NaN) * 1000 || Date.now());
      ctx.io.stdout.write(
        renderManPage(program, {
          version: VERSION,
          date: date.toISOString().slice(0, 10),
          topics: HELP_TOPICS,
        }),
      );
    });

  program
    .command('help [topic...]')
    .description('show help for a command or a topic (exit-codes, environment)')
    .action((topic: string[] = []) => {
      const name = topic.join(' ');
      if (!name) {
        program.outputHelp();
        return;
      }
      const text = HELP_TOPICS[name];
      if (text) {
        ctx.io.out(text);
        return;
      }
      let cmd: Command | undefined = program;
      for (const part of topic)
        cmd = cmd?.commands.find((c) => c.name() === part || c.aliases().includes(part));
      if (!cmd) {
        throw new UsageError(`no help topic or command named ${JSON.stringify(name)}`, {
          code: 'bad_usage',
          hint: `topics: ${Object.keys(HELP_TOPICS).join(', ')}; commands: see oauthmail --help`,
        });
      }
      cmd.outputHelp();
    });

  return program;
}

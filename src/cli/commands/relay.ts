/**
 * `oauthmail relay`: a local SMTP relay for printers, scanners and old applications that speak
 * SMTP with a password (or none) and will never learn OAuth; their mail goes upstream with a
 * profile's token (src/relay/). `oauthmail relay user add|list|remove|passwd` manages the devices.
 *
 * Shape: flags -> relayOptions() (pure, throws UsageError) -> runRelay(options, ctx).
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context } from '../context.js';
import type { Listener } from '../../relay/addresses.js';
import type { UserSettings } from '../../relay/users.js';

export interface RelayOptions {
  /** Empty: relay.json's listen, else the defaults (loopback 2587 STARTTLS, 2465 TLS). */
  listen: Listener[];
  tls?: { cert: string; key: string };
  metrics?: string;
  queueEverySeconds?: number;
  profile?: string;
  json: boolean;
}

export interface RelayFlags {
  listen?: string[];
  tlsCert?: string;
  tlsKey?: string;
  metrics?: string;
  queueEvery?: string;
}

export async function relayOptions(
  flags: RelayFlags,
  globals: { profile?: string; json?: boolean },
): Promise<RelayOptions> {
  const { parseListen } = await import('../../relay/addresses.js');
  if (!!flags.tlsCert !== !!flags.tlsKey) {
    throw new UsageError('--tls-cert and --tls-key go together', {
      code: 'bad_usage',
      hint: 'give both (PEM files), or neither for a self-signed certificate made by oauthmail',
    });
  }
  let queueEverySeconds: number | undefined;
  if (flags.queueEvery !== undefined) {
    const { parseDuration } = await import('./queue.js');
    queueEverySeconds = Math.max(1, Math.round(parseDuration(flags.queueEvery, '--queue-every') / 1000));
  }
  return {
    listen: (flags.listen ?? []).map(parseListen),
    ...(flags.tlsCert && flags.tlsKey ? { tls: { cert: flags.tlsCert, key: flags.tlsKey } } : {}),
    ...(flags.metrics ? { metrics: flags.metrics } : {}),
    ...(queueEverySeconds !== undefined ? { queueEverySeconds } : {}),
    ...(globals.profile ? { profile: globals.profile } : {}),
    json: !!globals.json,
  };
}

export async function runRelay(o: RelayOptions, ctx: Context): Promise<void> {
  const { RelayStore, DEFAULT_LISTEN } = await import('../../relay/config.js');
  const { parseListen } = await import('../../relay/addresses.js');
  const { runRelayServer } = await import('../../relay/run.js');
  const store = new RelayStore(ctx.paths.configDir, ctx.lock);
  const relay = await store.load();
  const listeners = o.listen.length ? o.listen : (relay.listen ?? DEFAULT_LISTEN).map(parseListen);
  let defaultProfile = o.profile;
  if (!defaultProfile) {
    const { resolveProfileName } = await import('../../config/store.js');
    // no default profile: devices must name theirs (the relay says so for those that do not)
    defaultProfile = await ctx.config
      .load()
      .then((c) => resolveProfileName(c, undefined, ctx.env).name)
      .catch(() => undefined);
  }
  // signals (through the run's one interrupt rule, src/util/interrupt.ts): HUP reloads, TERM/INT
  // stop gracefully (a requested stop of a server is a success)
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((r) => (stop = r));
  const hup: Array<() => void> = [];
  const claim = ctx.interrupt.claim('', {
    forward: (sig) => (sig === 'SIGHUP' ? hup.forEach((f) => f()) : stop(sig)),
  });
  try {
    await runRelayServer({
      listeners,
      ...(o.tls ? { tlsFiles: o.tls } : relay.tls ? { tlsFiles: relay.tls } : {}),
      ...((o.metrics ?? relay.metrics) ? { metrics: (o.metrics ?? relay.metrics)! } : {}),
      queueEveryMs: (o.queueEverySeconds ?? relay.queueEverySeconds ?? 30) * 1000,
      json: o.json,
      ...(defaultProfile ? { defaultProfile } : {}),
      dataDir: ctx.paths.dataDir,
      locksDir: ctx.paths.locksDir,
      loadRelay: () => store.load(),
      loadConfig: () => ctx.config.load(),
      sourceFor: (p) => ctx.tokenSource(p),
      out: (l) => ctx.io.out(l),
      err: (l) => ctx.io.err(l),
      ...(ctx.io.verbose ? { debug: (l: string) => ctx.io.debug(l) } : {}),
      signals: { onHup: (f) => hup.push(f), stopped },
    });
  } finally {
    claim.release();
  }
}

const list = (v: string | undefined) =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

function positive(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d{1,12})\s*(k|m|kb|mb)?$/i.exec(v.trim());
  const n = m
    ? Number(m[1]) * ({ k: 1024, kb: 1024, m: 1048576, mb: 1048576 }[m[2]?.toLowerCase() ?? ''] ?? 1)
    : 0;
  if (!m || n <= 0)
    throw new UsageError(`${flag} ${JSON.stringify(v)} is not a positive number`, { code: 'bad_value' });
  return n;
}

/** `relay user add/passwd` flags -> settings (pure). */
export function userSettings(
  flags: { allowFrom?: string; sendAs?: string; maxSize?: string; rate?: string },
  globals: { profile?: string },
): UserSettings {
  const allowFrom = list(flags.allowFrom);
  const sendAs = list(flags.sendAs);
  const maxSize = positive(flags.maxSize, '--max-size');
  const ratePerMinute = positive(flags.rate, '--rate');
  return {
    ...(globals.profile ? { profile: globals.profile } : {}),
    ...(allowFrom ? { allowFrom } : {}),
    ...(sendAs ? { sendAs } : {}),
    ...(maxSize ? { maxSize } : {}),
    ...(ratePerMinute ? { ratePerMinute } : {}),
  };
}

async function relayStore(ctx: Context) {
  const { RelayStore } = await import('../../relay/config.js');
  return new RelayStore(ctx.paths.configDir, ctx.lock);
}

function showPassword(ctx: Context, name: string, password: string, what: string): void {
  if (ctx.io.json) {
    ctx.io.outJson({ user: name, password });
  } else {
    ctx.io.out(password);
  }
  ctx.io.err(
    `relay user ${name} ${what}; the password above is shown this once (only its scrypt hash is kept). ` +
      'A running relay picks the change up on SIGHUP (systemctl reload).',
  );
}

export function registerRelay(program: Command, ctx: Context): void {
  const relay = program
    .command('relay')
    .description(
      'a local SMTP relay for printers, scanners and old applications (they send, a profile signs in)',
    )
    .option(
      '--listen <addr:port...>',
      'where to listen: ADDR:PORT (STARTTLS) or tls://ADDR:PORT (default: loopback 2587 and tls 2465)',
    )
    .option(
      '--tls-cert <file>',
      'TLS certificate (PEM); without it a self-signed one is made, its fingerprint printed',
    )
    .option('--tls-key <file>', 'TLS private key (PEM) for --tls-cert')
    .option('--metrics <addr:port>', 'serve /metrics (Prometheus) and /health on this loopback address')
    .option('--queue-every <duration>', 'how often to try the queue (default 30s)')
    .addHelpText(
      'after',
      `
Devices (each with a password shown once; mail goes out as the profile's mailbox):
  $ oauthmail -p work relay user add scanner --allow-from 192.168.1.20
  $ oauthmail relay --listen 192.168.1.5:587 --listen tls://192.168.1.5:465

Never an open relay: without AUTH only allowlisted addresses may send. SIGHUP reloads the users.`,
    )
    .action(async (flags: RelayFlags, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ profile?: string; json?: boolean }>();
      await runRelay(await relayOptions(flags, g), ctx);
    });

  const user = relay.command('user').description('the devices that may send through the relay');
  const settingsFlags = (c: Command) =>
    c
      .option('--allow-from <list>', 'addresses or CIDRs that may send as this device without AUTH')
      .option(
        '--send-as <list>',
        'From addresses kept as they are (default: From is rewritten to the mailbox)',
      )
      .option('--max-size <bytes>', 'largest message (e.g. 25m; default 35m)')
      .option('--rate <n>', 'messages a minute (default 120)');
  settingsFlags(user.command('add <name>').description('add a device; prints its password once')).action(
    async (name: string, flags: Record<string, string>, cmd: Command) => {
      const s = userSettings(flags, cmd.optsWithGlobals());
      const { addUser } = await import('../../relay/users.js');
      showPassword(ctx, name, await addUser(await relayStore(ctx), name, s), 'added');
    },
  );
  settingsFlags(
    user.command('passwd <name>').description('a new password (and settings) for a device'),
  ).action(async (name: string, flags: Record<string, string>, cmd: Command) => {
    const s = userSettings(flags, cmd.optsWithGlobals());
    const { passwdUser } = await import('../../relay/users.js');
    showPassword(ctx, name, await passwdUser(await relayStore(ctx), name, s), 'has a new password');
  });
  user
    .command('remove <name>')
    .description('remove a device')
    .action(async (name: string) => {
      const { removeUser } = await import('../../relay/users.js');
      await removeUser(await relayStore(ctx), name);
      ctx.io.err(`relay user ${name} removed (a running relay forgets it on SIGHUP)`);
    });
  user
    .command('list')
    .description('the devices (never their passwords)')
    .action(async () => {
      const { listUsers } = await import('../../relay/users.js');
      const users = await listUsers(await relayStore(ctx));
      if (ctx.io.json) return ctx.io.outJson(users);
      for (const u of users) {
        const parts = [
          u.name,
          `profile=${u.profile ?? '(default)'}`,
          u.allowFrom?.length ? `allow-from=${u.allowFrom.join(',')}` : '',
          u.sendAs ? `send-as=${u.sendAs.join(',')}` : 'from=rewritten',
          u.maxSize ? `max-size=${u.maxSize}` : '',
          u.ratePerMinute ? `rate=${u.ratePerMinute}/min` : '',
        ];
        ctx.io.out(parts.filter(Boolean).join('  '));
      }
    });
}

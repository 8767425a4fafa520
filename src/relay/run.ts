/**
 * The running relay: listeners, the queue loop, the metrics endpoint, and the signals.
 * - ready: one line once every listener is bound (stderr; with --json a JSON line on stdout), with
 *   the addresses, ports and the certificate's fingerprint, so a service manager or a test can wait.
 * - SIGHUP: relay.json is read again (devices, allowlists, limits); a file that does not parse is
 *   reported and the old settings stay.
 * - SIGTERM / SIGINT: stop accepting connections, let messages in flight finish (their 250 comes
 *   only after the upstream or the queue has them), stop the queue loop, exit 0.
 */
import addressparser from 'nodemailer/lib/addressparser';
import type { Config, Profile } from '../config/schema.js';
import { ConfigError } from '../errors/index.js';
import type { TokenSource } from '../mail/token-source.js';
import type { RunEvent } from '../mail/queue/runner.js';
import { listenText, type Listener } from './addresses.js';
import { selfSignedTls, tlsFromFiles, type RelayTls } from './certificate.js';
import { throttleOf, type RelayConfig } from './config.js';
import { Devices } from './devices.js';
import { AuthGuard, RateLimit } from './guard.js';
import { relayLog } from './log.js';
import { Metrics, serveMetrics } from './metrics.js';
import { VerifiedPasswords } from './password.js';
import { createRelayServer } from './server.js';
import { Upstream } from './upstream.js';

export interface RelayRunDeps {
  listeners: Listener[];
  tlsFiles?: { cert: string; key: string };
  metrics?: string;
  queueEveryMs: number;
  json: boolean;
  /** The profile for devices that name none. */
  defaultProfile?: string;
  dataDir: string;
  locksDir: string;
  loadRelay: () => Promise<RelayConfig>;
  loadConfig: () => Promise<Config>;
  sourceFor: (profile: string) => Promise<{ profile: Profile; source: TokenSource }>;
  out: (line: string) => void;
  err: (line: string) => void;
  debug?: (line: string) => void;
  /** Resolves when the relay should stop (a signal); the caller installs the handlers. */
  signals: { onHup: (fn: () => void) => void; stopped: Promise<string> };
}

/** The address a profile sends as: its `from` (an address, or "Name <address>"), else its user. */
export function mailboxOfProfile(p: Profile | undefined): string | undefined {
  if (!p) return undefined;
  const from = p.from ? addressparser(p.from, { flatten: true })[0]?.address : undefined;
  return from || p.user;
}

/** A listener that cannot bind: exit 3, naming the address and the fix. */
function listenError(l: Listener, e: NodeJS.ErrnoException): Error {
  const where = listenText(l);
  const why =
    e.code === 'EADDRINUSE'
      ? ['something else listens there', 'stop it, or give another port with --listen']
      : e.code === 'EACCES'
        ? [
            'ports below 1024 need privileges',
            'use a port above 1024, or give the service CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)',
          ]
        : e.code === 'EADDRNOTAVAIL'
          ? ['this machine has no such address', 'give one of its addresses (ip -brief address)']
          : [e.message, 'check the address given with --listen'];
  return new ConfigError(`cannot listen on ${where}: ${why[0]} (${e.code ?? 'error'})`, {
    code: 'relay_listen',
    hint: why[1]!,
    cause: e,
  });
}

export async function runRelayServer(d: RelayRunDeps): Promise<void> {
  const log = relayLog(d.json, d.out, d.err);
  const metrics = new Metrics();
  let relay = await d.loadRelay();
  let config = await d.loadConfig();
  let devices = new Devices(relay, d.defaultProfile);
  const guard = new AuthGuard(throttleOf(relay));
  const rate = new RateLimit();
  const passwords = new VerifiedPasswords();
  const tls: RelayTls = d.tlsFiles
    ? tlsFromFiles(d.tlsFiles.cert, d.tlsFiles.key)
    : await selfSignedTls(
        d.dataDir,
        d.listeners.map((l) => l.host),
      );
  const upstream = new Upstream({
    dataDir: d.dataDir,
    locksDir: d.locksDir,
    sourceFor: d.sourceFor,
    everyMs: d.queueEveryMs,
    onQueueEvent: (ev: RunEvent) => {
      if (ev.kind === 'delivered') metrics.queueDelivered++;
      if (ev.kind === 'dead') metrics.queueDead++;
      log.event(`queue-${ev.kind}`, {
        id: ev.id,
        profile: ev.profile,
        ...(ev.kind === 'delivered' ? { upstream: ev.response } : {}),
        ...(ev.kind === 'deferred' ? { error: ev.error, next: ev.nextAttemptAt } : {}),
        ...(ev.kind === 'dead' ? { reason: ev.reason } : {}),
      });
    },
    ...(d.debug ? { debug: d.debug } : {}),
  });
  for (const dev of devices.all()) {
    if (!config.profiles[dev.profile])
      d.err(
        `warning: relay user ${dev.user.name}: ${dev.profile ? `no profile ${dev.profile}` : 'no profile named and no default profile'}; its mail gets 451 (set one: oauthmail -p PROFILE relay user passwd ${dev.user.name})`,
      );
  }

  const servers = d.listeners.map((l) =>
    createRelayServer(l, {
      devices: () => devices,
      mailboxOf: (p) => mailboxOfProfile(config.profiles[p]),
      deliver: (p, env, raw) => upstream.deliver(p, env, raw),
      guard,
      rate,
      log,
      metrics,
      tls,
      passwords,
    }),
  );
  const bound: string[] = [];
  try {
    for (const [i, s] of servers.entries()) {
      const l = d.listeners[i]!;
      await new Promise<void>((resolve, reject) => {
        s.once('error', (e: NodeJS.ErrnoException) => reject(listenError(l, e)));
        s.listen(l.port, l.host, () => resolve());
      });
      s.on('error', (e: Error) => d.err(`relay: listener ${listenText(l)}: ${e.message}`));
      bound.push(listenText(l, (s.server.address() as { port: number }).port));
    }
  } catch (e) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));
    await upstream.stop();
    throw e;
  }
  const metricsSrv = d.metrics
    ? await serveMetrics(d.metrics, async () =>
        metrics.text({
          queueWaiting: await upstream.waiting(),
          lockedAddresses: guard.lockedCount(),
          users: devices.size,
        }),
      )
    : undefined;
  upstream.start();

  d.signals.onHup(() => {
    void (async () => {
      try {
        const r = await d.loadRelay();
        config = await d.loadConfig();
        relay = r;
        devices = new Devices(relay, d.defaultProfile);
        guard.setThrottle(throttleOf(relay));
        upstream.reset();
        log.event('reloaded', { users: devices.size });
        void upstream.runOnce();
      } catch (e) {
        log.event('reload-failed', { error: (e as Error).message, kept: 'the settings in use' });
      }
    })();
  });

  const ready = {
    listen: bound,
    certificate: tls.fingerprint,
    selfSigned: tls.selfSigned,
    users: devices.size,
    ...(metricsSrv ? { metrics: `http://127.0.0.1:${metricsSrv.port}/metrics` } : {}),
  };
  if (d.json) d.out(JSON.stringify({ time: new Date().toISOString(), event: 'ready', ...ready }));
  d.err(
    `oauthmail relay: ready on ${bound.join(' ')} (${devices.size} device${devices.size === 1 ? '' : 's'}); ` +
      `TLS certificate SHA-256 ${tls.fingerprint}${tls.selfSigned ? ' (self-signed)' : ''}` +
      (metricsSrv ? `; metrics on http://127.0.0.1:${metricsSrv.port}/metrics` : ''),
  );

  const why = await d.signals.stopped;
  log.event('stopping', { signal: why });
  // no new connections; sessions in flight finish (a DATA being delivered gets its answer)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));
  await upstream.stop();
  await metricsSrv?.close();
  log.event('stopped', { queued: await upstream.waiting() });
}

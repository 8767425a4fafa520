/**
 * Counters for `/metrics` (Prometheus text exposition format 0.0.4) and `/health`, served on a
 * loopback address only: they name devices, which is nobody else's business.
 */
import http from 'node:http';
import { UsageError } from '../errors/index.js';
import { isLoopbackIp, parseListen } from './addresses.js';

export type Refusal = 'auth' | 'relay' | 'size' | 'sender' | 'rate' | 'upstream' | 'locked' | 'tls';

export class Metrics {
  messagesIn = 0;
  messagesSent = 0;
  messagesQueued = 0;
  queueDelivered = 0;
  queueDead = 0;
  readonly refused = new Map<Refusal, number>();
  authFailures = 0;
  /** Upstream latency of live sends, seconds. */
  latencySum = 0;
  latencyCount = 0;

  refuse(r: Refusal): void {
    this.refused.set(r, (this.refused.get(r) ?? 0) + 1);
  }

  text(gauges: { queueWaiting: number; lockedAddresses: number; users: number }): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, rows: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) lines.push(`${name}${labels} ${v}`);
    };
    metric('oauthmail_relay_messages_in_total', 'counter', 'Messages received from devices.', [
      ['', this.messagesIn],
    ]);
    metric('oauthmail_relay_messages_out_total', 'counter', 'Messages accepted upstream.', [
      ['{path="live"}', this.messagesSent],
      ['{path="queue"}', this.queueDelivered],
    ]);
    metric('oauthmail_relay_messages_queued_total', 'counter', 'Messages written to the queue.', [
      ['', this.messagesQueued],
    ]);
    metric('oauthmail_relay_messages_dead_total', 'counter', 'Queued messages refused for good or expired.', [
      ['', this.queueDead],
    ]);
    metric(
      'oauthmail_relay_refused_total',
      'counter',
      'Commands or messages refused, by reason.',
      [...this.refused].map(([r, n]) => [`{reason="${r}"}`, n]),
    );
    metric('oauthmail_relay_auth_failures_total', 'counter', 'Bad passwords.', [['', this.authFailures]]);
    metric('oauthmail_relay_upstream_seconds', 'summary', 'Upstream send time of live messages.', [
      ['_sum', Number(this.latencySum.toFixed(6))],
      ['_count', this.latencyCount],
    ]);
    metric('oauthmail_relay_queue_waiting', 'gauge', 'Messages waiting in the queue.', [
      ['', gauges.queueWaiting],
    ]);
    metric('oauthmail_relay_locked_addresses', 'gauge', 'Client addresses refused after bad passwords.', [
      ['', gauges.lockedAddresses],
    ]);
    metric('oauthmail_relay_users', 'gauge', 'Devices configured.', [['', gauges.users]]);
    return lines.join('\n') + '\n';
  }
}

/** Serve /metrics and /health on `spec` (a loopback ADDR:PORT); resolves with the bound port. */
export async function serveMetrics(
  spec: string,
  render: () => Promise<string>,
): Promise<{ port: number; close: () => Promise<void> }> {
  const l = parseListen(spec);
  if (!isLoopbackIp(l.host)) {
    throw new UsageError(`--metrics ${spec}: the metrics endpoint listens on loopback only`, {
      code: 'bad_listen',
      hint: 'use --metrics 127.0.0.1:PORT (scrape it through a local agent or an SSH tunnel)',
    });
  }
  const srv = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    render().then(
      (t) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(t),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(l.port, l.host, () => resolve());
  });
  return {
    port: (srv.address() as { port: number }).port,
    close: () => new Promise((r) => srv.close(() => r())),
  };
}

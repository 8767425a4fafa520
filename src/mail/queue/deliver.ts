/**
 * Delivering queued messages over SMTP: one client per profile for the whole run, the message's
 * bytes and envelope exactly as queued.
 */
import type { Profile, RetryPolicy } from '../../config/schema.js';
import { DEFAULT_RETRY } from '../../config/schema.js';
import type { SmtpClient, SmtpOptions } from '../smtp.js';
import type { TokenSource } from '../token-source.js';
import type { QueueEntry } from './spool.js';

export interface SmtpDelivery {
  /** rejected: recipients the server refused while it took the message for the others. */
  deliver(entry: QueueEntry): Promise<{ response: string; rejected?: string[] }>;
  policyFor(profile: string): RetryPolicy;
  close(): void;
}

export function smtpDelivery(
  sourceFor: (profile: string) => Promise<{ profile: Profile; source: TokenSource }>,
  opts: SmtpOptions & {
    /** Flushes after a send make one attempt per message (no waits); `queue run` uses the profile's policy. */
    singleAttempt?: boolean;
  },
): SmtpDelivery {
  const clients = new Map<string, Promise<{ client: SmtpClient; profile: Profile }>>();
  const policies = new Map<string, RetryPolicy>();
  const clientFor = (name: string) => {
    let c = clients.get(name);
    if (!c) {
      c = (async () => {
        const { profile, source } = await sourceFor(name);
        policies.set(name, profile.retry ?? DEFAULT_RETRY);
        const { SmtpClient } = await import('../smtp.js');
        const { singleAttempt, ...rest } = opts;
        const client = await SmtpClient.create(profile, source, {
          ...rest,
          ...(singleAttempt ? { retry: { ...(profile.retry ?? DEFAULT_RETRY), mode: 'none' } } : {}),
        });
        return { client, profile };
      })();
      clients.set(name, c);
      // a profile that could not be opened is tried again on the next message's turn
      c.catch(() => clients.delete(name));
    }
    return c;
  };
  return {
    async deliver(entry) {
      const { client } = await clientFor(entry.meta.profile);
      const r = await client.send({
        mail: { raw: entry.raw },
        envelope: entry.meta.envelope,
        bcc: [],
      });
      return { response: r.response, ...(r.rejected.length ? { rejected: r.rejected } : {}) };
    },
    policyFor: (name) => policies.get(name) ?? DEFAULT_RETRY,
    close() {
      for (const c of clients.values()) c.then((x) => x.client.close()).catch(() => undefined);
    },
  };
}

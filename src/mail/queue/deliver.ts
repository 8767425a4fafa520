/**
 * Delivering queued messages over the profile's transport (SMTP, or Microsoft Graph for
 * transport graph): one sender per profile for the whole run, the message's bytes and envelope
 * exactly as queued.
 */
import type { Profile, RetryPolicy } from '../../config/schema.js';
import { DEFAULT_RETRY } from '../../config/schema.js';
import type { SmtpOptions } from '../smtp.js';
import type { MailSender } from '../transport.js';
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
  const clients = new Map<string, Promise<{ client: MailSender; profile: Profile }>>();
  const policies = new Map<string, RetryPolicy>();
  const clientFor = (name: string) => {
    let c = clients.get(name);
    if (!c) {
      c = (async () => {
        const { profile, source } = await sourceFor(name);
        policies.set(name, profile.retry ?? DEFAULT_RETRY);
        const { createSender } = await import('../transport.js');
        const { singleAttempt, ...rest } = opts;
        const client = await createSender(profile, source, {
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
      const r = await client.sendRaw(entry.raw, entry.meta.envelope);
      return { response: r.response, ...(r.rejected.length ? { rejected: r.rejected } : {}) };
    },
    policyFor: (name) => policies.get(name) ?? DEFAULT_RETRY,
    close() {
      for (const c of clients.values()) c.then((x) => x.client.close()).catch(() => undefined);
    },
  };
}

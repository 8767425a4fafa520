// Delta rounds of the local Graph endpoint, as "message: delta" and "Use delta query to track
// changes in Microsoft Graph data" describe them: the first round lists every message of the
// folder; pages of `Prefer: odata.maxpagesize` (default 10, echoed in `Preference-Applied`) are
// linked by `@odata.nextLink` ($skiptoken); the last page has `@odata.deltaLink` ($deltatoken);
// a later round with that link returns new messages and `@removed: {reason: "deleted"}` rows for
// those gone; a token the service does not know (or that the admin API expired) is 410 Gone,
// SyncStateNotFound, and the client starts over without a token. Tokens live in memory.
import { randomUUID } from 'node:crypto';
import { GraphError, MESSAGES } from './errors.mjs';
import { messageId } from './store.mjs';

/**
 * @param {{store: any, state: any, send: Function, baseUrl: () => string}} o
 */
export function createDelta({ store, state, send, baseUrl: base0 }) {
  async function delta(res, url, mailbox, fid, prefer, base) {
    const pageSize = Math.max(
      1,
      Math.min(1000, Number(/odata\.maxpagesize=(\d+)/.exec(prefer || '')?.[1] || 10)),
    );
    const skip = url.searchParams.get('$skiptoken');
    const dt = url.searchParams.get('$deltatoken');
    let round;
    if (skip) {
      round = state.rounds.get(skip);
      if (!round || round.mailbox !== mailbox)
        throw new GraphError(410, 'SyncStateNotFound', MESSAGES.syncStateNotFound);
      state.rounds.delete(skip);
    } else {
      let known = [];
      const now = await store.uids(mailbox, fid);
      if (dt) {
        const st = state.deltaTokens.get(dt);
        if (!st || st.mailbox !== mailbox || st.path !== now.path || st.uidValidity !== now.uidValidity)
          throw new GraphError(410, 'SyncStateNotFound', MESSAGES.syncStateNotFound);
        known = st.known;
      }
      const knownSet = new Set(known);
      const nowSet = new Set(now.uids);
      round = {
        mailbox,
        path: now.path,
        uidValidity: now.uidValidity,
        removed: known.filter((u) => !nowSet.has(u)),
        added: now.uids.filter((u) => !knownSet.has(u)),
        final: now.uids,
      };
    }
    const removedPage = round.removed.splice(0, pageSize);
    const addedPage = round.added.splice(0, pageSize - removedPage.length);
    const value = [
      ...removedPage.map((u) => ({
        '@odata.type': '#microsoft.graph.message',
        id: messageId(round.path, round.uidValidity, u),
        '@removed': { reason: 'deleted' },
      })),
      ...(await store.resources(mailbox, round.path, addedPage)).map((m) => ({
        '@odata.type': '#microsoft.graph.message',
        ...m,
      })),
    ];
    const body = { '@odata.context': `${base0()}/v1.0/$metadata#Collection(message)`, value };
    if (round.removed.length || round.added.length) {
      const t = randomUUID();
      state.rounds.set(t, round);
      body['@odata.nextLink'] = `${base}?$skiptoken=${t}`;
    } else {
      const t = randomUUID();
      state.deltaTokens.set(t, {
        mailbox,
        path: round.path,
        uidValidity: round.uidValidity,
        known: round.final,
      });
      body['@odata.deltaLink'] = `${base}?$deltatoken=${t}`;
    }
    send(res, 200, body, { 'Preference-Applied': `odata.maxpagesize=${pageSize}` });
  }

  return delta;
}

/**
 * Read a secret from the Secret Service (https://specifications.freedesktop.org/secret-service/)
 * over our own D-Bus client (./dbus.ts), so that every step has a timeout and nothing lingers:
 * keytar's libsecret calls cannot be cancelled and can hold the process ~25 s.
 *
 * What keytar 7 writes on Linux, measured against gnome-keyring 42 (test/integration/
 * secret-service-dbus.test.ts): `setPassword(service, account, pw)` stores an item with the
 * attributes { service, account, "xdg:schema": "org.freedesktop.Secret.Generic" }, label
 * "service/account", content type text/plain, in the default collection. `getPassword` searches
 * with all three attributes (libsecret adds xdg:schema because keytar's schema has no
 * SECRET_SCHEMA_DONT_MATCH_NAME flag), takes the first unlocked match, and only when there is none
 * tries to unlock the first locked one (a prompt). keytarAttributes() gives that same search.
 */
import { DBusConnection, DBusError, Variant, type DBusValue } from './dbus.js';

export const SECRETS_NAME = 'org.freedesktop.secrets';
const SERVICE_PATH = '/org/freedesktop/secrets';
const SERVICE_IFACE = 'org.freedesktop.Secret.Service';
const BUS = {
  destination: 'org.freedesktop.DBus',
  path: '/org/freedesktop/DBus',
  interface: 'org.freedesktop.DBus',
};
/** libsecret's name for keytar's schema, stored by libsecret as the attribute xdg:schema */
export const KEYTAR_SCHEMA = 'org.freedesktop.Secret.Generic';

/** The attributes keytar.getPassword(service, account) searches for. */
export function keytarAttributes(service: string, account: string): Record<string, string> {
  return { service, account, 'xdg:schema': KEYTAR_SCHEMA };
}

export type EnsureResult = 'running' | 'started' | 'not-activatable' | 'timeout';

const isTimeout = (e: unknown): boolean => (e as { code?: string } | null)?.code === 'ETIMEDOUT';

/**
 * Is the Secret Service on the bus, or can the bus start it? All within `timeoutMs`. Errors other
 * than a timeout (e.g. org.freedesktop.DBus.Error.Spawn.ChildExited: activation failed) are thrown.
 */
export async function ensureSecretService(conn: DBusConnection, timeoutMs: number): Promise<EnsureResult> {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  try {
    const [has] = await conn.call({
      ...BUS,
      member: 'NameHasOwner',
      signature: 's',
      body: [SECRETS_NAME],
      timeoutMs: left(),
    });
    if (has === true) return 'running';
    const [names] = await conn.call({ ...BUS, member: 'ListActivatableNames', timeoutMs: left() });
    if (!(names as string[]).includes(SECRETS_NAME)) return 'not-activatable';
    // reply 1: DBUS_START_REPLY_SUCCESS, 2: DBUS_START_REPLY_ALREADY_RUNNING
    const [r] = await conn.call({
      ...BUS,
      member: 'StartServiceByName',
      signature: 'su',
      body: [SECRETS_NAME, 0],
      timeoutMs: left(),
    });
    return r === 2 ? 'running' : 'started';
  } catch (e) {
    if (isTimeout(e)) return 'timeout';
    throw e;
  }
}

export type LookupResult =
  | { status: 'found'; value: string }
  | { status: 'absent' }
  | { status: 'locked' }
  | {
      status: 'no-service';
      reason: string;
      /** no-bus: cannot connect; timeout: no answer in time; not-activatable; error: a D-Bus error */
      code: 'no-bus' | 'timeout' | 'not-activatable' | 'error';
    };

export interface LookupOptions {
  /** the session bus address, e.g. process.env.DBUS_SESSION_BUS_ADDRESS */
  address: string;
  /** for the whole lookup: connecting, activation, search, reading */
  timeoutMs: number;
}

/** A "plain" Secret Service session (the secret travels over our private bus connection only). */
async function openSession(conn: Pick<DBusConnection, 'call'>, timeoutMs: number): Promise<string> {
  const opened = await conn.call({
    destination: SECRETS_NAME,
    path: SERVICE_PATH,
    interface: SERVICE_IFACE,
    member: 'OpenSession',
    signature: 'sv',
    body: ['plain', new Variant('s', '')],
    timeoutMs,
  });
  return opened[1] as string;
}

/** End a Secret Service session (never fails: the session also ends with the connection). */
function closeSession(
  conn: Pick<DBusConnection, 'call'>,
  session: string,
  timeoutMs: number,
): Promise<unknown> {
  return conn
    .call({
      destination: SECRETS_NAME,
      path: session,
      interface: 'org.freedesktop.Secret.Session',
      member: 'Close',
      timeoutMs,
    })
    .catch(() => undefined);
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** "cannot connect to the session bus at /run/user/1000/bus (ENOENT)": the socket and the errno. */
function cannotConnect(address: string, e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  const m = /(?:^|;)unix:(?:path|abstract)=([^,;]+)/.exec(address);
  return `cannot connect to the session bus${m ? ` at ${m[1]}` : ''}${typeof code === 'string' ? ` (${code})` : ''}`;
}

export type OpenResult =
  | { ok: true; conn: DBusConnection; state: 'running' | 'started' }
  | { ok: false; code: 'no-bus' | 'timeout' | 'not-activatable' | 'error'; reason: string };

/**
 * A connection to the session bus on which the Secret Service runs (started if need be), all
 * within `timeoutMs`; the caller closes it (or unrefs it to keep it for later reads).
 */
export async function openSecretService(address: string, timeoutMs: number): Promise<OpenResult> {
  const deadline = Date.now() + timeoutMs;
  let conn: DBusConnection;
  try {
    conn = await DBusConnection.connect(address, timeoutMs);
  } catch (e) {
    return isTimeout(e)
      ? { ok: false, code: 'timeout', reason: `the D-Bus session bus did not answer within ${timeoutMs} ms` }
      : { ok: false, code: 'no-bus', reason: cannotConnect(address, e) };
  }
  try {
    const state = await ensureSecretService(conn, Math.max(1, deadline - Date.now()));
    if (state === 'running' || state === 'started') return { ok: true, conn, state };
    conn.close();
    return state === 'timeout'
      ? { ok: false, code: 'timeout', reason: `the Secret Service did not start within ${timeoutMs} ms` }
      : {
          ok: false,
          code: 'not-activatable',
          reason: 'no Secret Service runs on the session bus and none can be started',
        };
  } catch (e) {
    conn.close();
    return { ok: false, code: 'error', reason: `the Secret Service failed: ${msg(e)}` };
  }
}

/**
 * Look up the secret of the first unlocked item whose attributes include all of `attrs` (as
 * libsecret does; use keytarAttributes() for what keytar stored). Never throws for bus or service
 * trouble: that is { status: 'no-service' }. Closes its session and connection on every path.
 */
export async function lookupSecret(
  attrs: Record<string, string>,
  opts: LookupOptions,
): Promise<LookupResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const open = await openSecretService(opts.address, opts.timeoutMs);
  if (!open.ok) return { status: 'no-service', code: open.code, reason: open.reason };
  try {
    return await lookupOn(open.conn, attrs, Math.max(1, deadline - Date.now()));
  } finally {
    open.conn.close();
  }
}

/**
 * The lookup itself, on a connection from openSecretService (left open): search, a plain session,
 * GetSecrets, close the session. Never throws for bus or service trouble.
 */
export async function lookupOn(
  conn: DBusConnection,
  attrs: Record<string, string>,
  timeoutMs: number,
): Promise<LookupResult> {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  let session: string | undefined;
  const svc = { destination: SECRETS_NAME, path: SERVICE_PATH, interface: SERVICE_IFACE };
  try {
    const [unlocked, locked] = (await conn.call({
      ...svc,
      member: 'SearchItems',
      signature: 'a{ss}',
      body: [attrs],
      timeoutMs: left(),
    })) as [string[], string[]];
    const item = unlocked[0];
    if (item === undefined) return locked.length > 0 ? { status: 'locked' } : { status: 'absent' };
    session = await openSession(conn, left());
    const [secrets] = await conn.call({
      ...svc,
      member: 'GetSecrets',
      signature: 'aoo',
      body: [[item], session],
      timeoutMs: left(),
    });
    const entry = (secrets as [string, DBusValue[]][]).find(([path]) => path === item);
    if (!entry) return { status: 'absent' }; // deleted between the search and the read
    const bytes = entry[1][2] as Buffer;
    try {
      return { status: 'found', value: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
    } catch {
      return { status: 'no-service', code: 'error', reason: 'the stored secret is not valid UTF-8 text' };
    } finally {
      bytes.fill(0);
    }
  } catch (e) {
    if (e instanceof DBusError && e.errorName === 'org.freedesktop.Secret.Error.IsLocked')
      return { status: 'locked' };
    if (isTimeout(e))
      return {
        status: 'no-service',
        code: 'timeout',
        reason: `the Secret Service did not answer within ${timeoutMs} ms`,
      };
    return { status: 'no-service', code: 'error', reason: `the Secret Service failed: ${msg(e)}` };
  } finally {
    if (session !== undefined) await closeSession(conn, session, left());
  }
}

export type ProbeResult =
  { ok: true; state: 'running' | 'started' } | { ok: false; reason: string; code: string };

/** Can the Secret Service be reached (and started if needed) within `timeoutMs`? */
export async function probeSecretService(address: string, timeoutMs: number): Promise<ProbeResult> {
  const r = await openSecretService(address, timeoutMs);
  if (!r.ok) return { ok: false, code: r.code, reason: r.reason };
  r.conn.close();
  return { ok: true, state: r.state };
}

export type StoreResult = { status: 'stored' } | { status: 'locked' } | { status: 'failed'; reason: string };

/**
 * Store `value` as keytar.setPassword would (same attributes, label and content type, in the
 * default collection, replacing the item with the same attributes), on a connection from
 * openSecretService. One plain session for the call. A locked collection (which would need a
 * prompt) and any other trouble are reported, never thrown: the caller then uses keytar.
 */
export async function storeOn(
  conn: DBusConnection,
  attrs: Record<string, string>,
  label: string,
  value: string,
  timeoutMs: number,
): Promise<StoreResult> {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  let session: string | undefined;
  const secret = Buffer.from(value, 'utf8');
  try {
    session = await openSession(conn, left());
    const [, prompt] = await conn.call({
      destination: SECRETS_NAME,
      path: '/org/freedesktop/secrets/aliases/default',
      interface: 'org.freedesktop.Secret.Collection',
      member: 'CreateItem',
      signature: 'a{sv}(oayays)b',
      body: [
        {
          'org.freedesktop.Secret.Item.Label': new Variant('s', label),
          'org.freedesktop.Secret.Item.Attributes': new Variant('a{ss}', attrs),
        },
        [session, Buffer.alloc(0), secret, 'text/plain'],
        true,
      ],
      timeoutMs: left(),
    });
    // "/" means done; anything else is a prompt (a locked collection), which we do not show
    return prompt === '/' ? { status: 'stored' } : { status: 'locked' };
  } catch (e) {
    if (e instanceof DBusError && e.errorName === 'org.freedesktop.Secret.Error.IsLocked')
      return { status: 'locked' };
    return { status: 'failed', reason: msg(e) };
  } finally {
    secret.fill(0);
    // not awaited: the item is stored once CreateItem has answered (and the session ends with
    // the connection anyway), so the caller need not wait one more round trip
    if (session !== undefined) void closeSession(conn, session, left());
  }
}

export type DeleteResult =
  { status: 'deleted' | 'absent' } | { status: 'locked' } | { status: 'failed'; reason: string };

/**
 * Delete the items keytar.deletePassword would (the unlocked ones with these attributes), on a
 * connection from openSecretService. A locked match or any trouble is reported, never thrown.
 */
export async function deleteOn(
  conn: DBusConnection,
  attrs: Record<string, string>,
  timeoutMs: number,
): Promise<DeleteResult> {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  try {
    const [unlocked, locked] = (await conn.call({
      destination: SECRETS_NAME,
      path: SERVICE_PATH,
      interface: SERVICE_IFACE,
      member: 'SearchItems',
      signature: 'a{ss}',
      body: [attrs],
      timeoutMs: left(),
    })) as [string[], string[]];
    if (locked.length > 0) return { status: 'locked' };
    for (const item of unlocked) {
      const [prompt] = await conn.call({
        destination: SECRETS_NAME,
        path: item,
        interface: 'org.freedesktop.Secret.Item',
        member: 'Delete',
        timeoutMs: left(),
      });
      if (prompt !== '/') return { status: 'locked' };
    }
    return { status: unlocked.length > 0 ? 'deleted' : 'absent' };
  } catch (e) {
    return { status: 'failed', reason: msg(e) };
  }
}

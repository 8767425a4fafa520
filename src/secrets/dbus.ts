/**
 * A tiny D-Bus client in pure Node (node:net), enough to talk to the Secret Service with every
 * call under a timeout, which libsecret's native calls (through keytar) cannot offer.
 *
 * Implements, from the D-Bus Specification (https://dbus.freedesktop.org/doc/dbus-specification.html):
 *   - "Server Addresses" and "Transports / Unix Domain Sockets": `unix:path=` and `unix:abstract=`
 *     entries of a `;`-separated address list, with %-escaped values; tried in order.
 *   - "Authentication Protocol": the leading NUL byte, `AUTH EXTERNAL <hex uid>`, `OK <guid>`,
 *     `BEGIN` (no unix-fd negotiation).
 *   - "Message Protocol / Message Format": the fixed header, the header fields `a(yv)`, padding of
 *     the body to 8; method calls, method returns, errors (reply matching by REPLY_SERIAL). Signals
 *     and method calls sent to us are ignored.
 *   - "Type System / Marshaling (Wire Format)": y b n q i u x t d h s o g v, arrays, structs and dict
 *     entries, with their alignment. Writes little-endian; reads both byte orders.
 *   - "Message Bus Specification": the `Hello` call that every connection to a bus must make first.
 * Values: y n q i u h → number, x t → bigint, b → boolean, s o g → string, ay → Buffer (a view into
 * the message), other arrays → arrays, struct and dict entry → array of its fields, v → Variant.
 * When writing a dict (`a{..}`), a plain object or a Map is accepted as well as `[key, value]` pairs.
 */
import net from 'node:net';
import {
  Variant,
  DBusError,
  fail,
  timeoutError,
  Writer,
  marshal,
  Reader,
  unmarshal,
  type DBusValue,
} from './dbus-wire.js';

export * from './dbus-wire.js';

// --- addresses --------------------------------------------------------------------------------

/** The socket paths (abstract ones with a leading NUL) of the usable entries of a bus address. */
export function socketPaths(address: string): string[] {
  const out: string[] = [];
  for (const entry of address.split(';')) {
    const colon = entry.indexOf(':');
    if (colon < 0 || entry.slice(0, colon) !== 'unix') continue;
    const params = new Map<string, string>();
    for (const kv of entry.slice(colon + 1).split(',')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) continue;
      try {
        params.set(kv.slice(0, eq), decodeURIComponent(kv.slice(eq + 1)));
      } catch {
        params.clear();
        break; // a bad %-escape: skip the entry
      }
    }
    const path = params.get('path');
    const abstract = params.get('abstract');
    if (path) out.push(path);
    else if (abstract) out.push(`\0${abstract}`);
  }
  return out;
}

// --- the connection ---------------------------------------------------------------------------

export interface CallOptions {
  destination?: string;
  path: string;
  interface?: string;
  member: string;
  signature?: string;
  body?: DBusValue[];
  timeoutMs: number;
  /** flag NO_AUTO_START: do not activate `destination` for this call */
  noAutoStart?: boolean;
}

interface Pending {
  resolve: (body: DBusValue[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const BUS = {
  destination: 'org.freedesktop.DBus',
  path: '/org/freedesktop/DBus',
  interface: 'org.freedesktop.DBus',
};
const MAX_MESSAGE = 1 << 27;

export class DBusConnection {
  uniqueName = '';
  private serial = 0;
  private readonly pending = new Map<number, Pending>();
  private input: Buffer = Buffer.alloc(0);
  private closed: Error | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d) => this.onData(d));
    sock.on('error', (e) => this.close(e));
    sock.on('close', () => this.close());
  }

  /** Connect, authenticate and say Hello, all within `timeoutMs`; tries the address's entries in order. */
  static async connect(address: string, timeoutMs: number): Promise<DBusConnection> {
    const paths = socketPaths(address);
    if (paths.length === 0) fail('no usable unix: entry in the bus address');
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (const path of paths) {
      let conn: DBusConnection | undefined;
      try {
        conn = new DBusConnection(await authenticate(path, deadline, timeoutMs));
        const [name] = await conn.call({
          ...BUS,
          member: 'Hello',
          timeoutMs: Math.max(1, deadline - Date.now()),
        });
        conn.uniqueName = name as string;
        return conn;
      } catch (e) {
        conn?.close();
        last = e;
        if (!['ENOENT', 'ECONNREFUSED', 'EACCES'].includes((e as { code?: string }).code ?? '')) break;
      }
    }
    throw last;
  }

  /** Call a method; resolves with the reply's body, rejects with DBusError or on timeout. */
  call(o: CallOptions): Promise<DBusValue[]> {
    if (this.closed) return Promise.reject(this.closed);
    const serial = ++this.serial;
    const fields: DBusValue[] = [
      [1, new Variant('o', o.path)],
      [3, new Variant('s', o.member)],
    ];
    if (o.interface) fields.push([2, new Variant('s', o.interface)]);
    if (o.destination) fields.push([6, new Variant('s', o.destination)]);
    if (o.signature) fields.push([8, new Variant('g', o.signature)]);
    const body = o.signature ? marshal(o.signature, o.body ?? []) : Buffer.alloc(0);
    const w = new Writer();
    for (const v of [108, 1, o.noAutoStart ? 2 : 0, 1]) w.write('y', v); // 'l', METHOD_CALL, flags, version
    w.write('u', body.length);
    w.write('u', serial);
    w.write('a(yv)', fields);
    w.pad(8);
    w.bytes(body);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(serial);
        reject(timeoutError(`the call ${o.interface ?? ''}.${o.member}`, o.timeoutMs));
      }, o.timeoutMs);
      this.pending.set(serial, { resolve, reject, timer });
      this.sock.write(w.buf.subarray(0, w.length));
    });
  }

  /** Unref the socket: an idle connection then does not keep the process alive. */
  unref(): this {
    this.sock.unref();
    return this;
  }

  /** Destroy the socket and reject what is pending; nothing is left to keep the process alive. */
  close(reason?: Error): void {
    if (this.closed) return;
    this.closed =
      reason ?? Object.assign(new Error('D-Bus: the connection is closed'), { code: 'ECONNRESET' });
    this.sock.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.closed);
    }
    this.pending.clear();
  }

  private onData(d: Buffer): void {
    this.input = this.input.length ? Buffer.concat([this.input, d]) : d;
    try {
      while (this.input.length >= 16) {
        if (this.input[0] !== 108 && this.input[0] !== 66) fail('bad byte-order mark');
        const le = this.input[0] === 108; // 'l' (little-endian) or 'B'
        const r = new Reader(this.input, 4, le);
        const bodyLen = r.read('u') as number;
        const fieldsLen = (r.read('u'), r.read('u') as number); // (skips the serial)
        const bodyAt = 16 + fieldsLen + ((8 - ((16 + fieldsLen) % 8)) % 8);
        if (bodyAt + bodyLen > MAX_MESSAGE) fail('message too long');
        if (this.input.length < bodyAt + bodyLen) return;
        const msg = this.input.subarray(0, bodyAt + bodyLen);
        this.input = this.input.subarray(bodyAt + bodyLen);
        this.dispatch(msg, le, bodyAt);
      }
    } catch (e) {
      this.close(e as Error);
    }
  }

  private dispatch(msg: Buffer, le: boolean, bodyAt: number): void {
    const type = msg[1];
    if (type !== 2 && type !== 3) return; // signals and calls to us are ignored
    const fields = new Map<number, DBusValue>();
    for (const f of new Reader(msg.subarray(0, bodyAt), 12, le).read('a(yv)') as [number, Variant][])
      fields.set(f[0], f[1].value);
    const p = this.pending.get(fields.get(5) as number);
    if (!p) return;
    this.pending.delete(fields.get(5) as number);
    clearTimeout(p.timer);
    try {
      const sig = (fields.get(8) as string | undefined) ?? '';
      const body = unmarshal(sig, msg.subarray(bodyAt), le);
      if (type === 2) p.resolve(body);
      else
        p.reject(
          new DBusError(
            (fields.get(4) as string | undefined) ?? 'undefined',
            typeof body[0] === 'string' ? body[0] : '',
          ),
        );
    } catch (e) {
      p.reject(e as Error);
    }
  }
}

/** Connect a socket and do the SASL exchange, before the deadline. */
function authenticate(path: string, deadline: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let text = '';
    const done = (e?: Error) => {
      clearTimeout(timer);
      sock.removeAllListeners('data').removeAllListeners('error');
      if (e) {
        sock.destroy();
        reject(e);
      } else resolve(sock);
    };
    const timer = setTimeout(
      () => done(timeoutError('the session bus', timeoutMs)),
      Math.max(1, deadline - Date.now()),
    );
    sock.on('error', (e) => done(e));
    sock.once('connect', () => {
      const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
      sock.write(`\0AUTH EXTERNAL ${Buffer.from(String(uid)).toString('hex')}\r\n`);
    });
    sock.on('data', (d) => {
      text += d.toString('latin1');
      const eol = text.indexOf('\r\n');
      if (eol < 0) return text.length > 4096 ? done(new Error('D-Bus: bad authentication reply')) : undefined;
      const line = text.slice(0, eol);
      if (!line.startsWith('OK '))
        return done(new Error(`D-Bus: authentication failed (${line.slice(0, 100)})`));
      sock.write('BEGIN\r\n');
      done();
    });
  });
}

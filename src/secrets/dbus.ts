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

export type DBusValue = number | bigint | boolean | string | Buffer | Variant | DBusValue[] | DictLike;
type DictLike = Map<DBusValue, DBusValue> | { [key: string]: DBusValue };

export class Variant {
  constructor(
    readonly signature: string,
    readonly value: DBusValue,
  ) {}
}

/** An error reply: `errorName` is the D-Bus error name, e.g. org.freedesktop.DBus.Error.ServiceUnknown. */
export class DBusError extends Error {
  readonly code = 'EDBUS';
  constructor(
    readonly errorName: string,
    text: string,
  ) {
    super(text ? `${errorName}: ${text}` : errorName);
  }
}

export function timeoutError(what: string, ms: number): Error & { code: string } {
  return Object.assign(new Error(`D-Bus: ${what} got no answer within ${ms} ms`), { code: 'ETIMEDOUT' });
}

const fail = (text: string): never => {
  throw new Error(`D-Bus: ${text}`);
};

// --- signatures -----------------------------------------------------------------------------------

/** The end (exclusive) of the single complete type that starts at sig[i]. */
function typeEnd(sig: string, i: number): number {
  const c = sig[i];
  if (c === undefined) return fail('truncated signature');
  if (c === 'a') return typeEnd(sig, i + 1);
  if (c === '(' || c === '{') {
    const close = c === '(' ? ')' : '}';
    let j = i + 1;
    while (sig[j] !== close) j = typeEnd(sig, j);
    return j + 1;
  }
  if (!'ybnqiuxtdhsogv'.includes(c)) fail(`unsupported type code "${c}"`);
  return i + 1;
}

/** Split a signature into its single complete types: "sa{sv}(ii)" → ["s", "a{sv}", "(ii)"]. */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < sig.length;) {
    const end = typeEnd(sig, i);
    out.push(sig.slice(i, end));
    i = end;
  }
  return out;
}

/** Fixed-size types: [size (= alignment), the Buffer method suffix: read<X>LE/BE, write<X>LE]. */
// prettier-ignore
const FIXED: Record<string, [number, string]> = {
  y: [1, 'UInt8'], b: [4, 'UInt32'], n: [2, 'Int16'], q: [2, 'UInt16'], i: [4, 'Int32'],
  u: [4, 'UInt32'], h: [4, 'UInt32'], x: [8, 'BigInt64'], t: [8, 'BigUInt64'], d: [8, 'Double'],
};
const alignOf = (type: string): number =>
  FIXED[type[0]!]?.[0] ?? ('({'.includes(type[0]!) ? 8 : 'gv'.includes(type[0]!) ? 1 : 4);
const MAX_ARRAY = 1 << 26; // spec: arrays are at most 64 MiB
type NumFn = (...args: (number | bigint)[]) => number | bigint;
const numeric = (buf: Buffer, method: string): NumFn =>
  (buf as unknown as Record<string, NumFn>)[method]!.bind(buf);

function scalar(c: string, v: DBusValue): number | bigint {
  if (c === 'b') return typeof v === 'boolean' ? Number(v) : fail('a boolean is needed for "b"');
  if (typeof v !== 'number' && typeof v !== 'bigint') return fail(`a number is needed for "${c}"`);
  return c === 'x' || c === 't' ? BigInt(v) : Number(v);
}

// --- marshalling ------------------------------------------------------------------------------

export class Writer {
  buf = Buffer.alloc(256);
  length = 0;
  /** Reserve n zeroed bytes and return their offset (read this.buf only after: it may grow). */
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    this.length += n;
    return this.length - n;
  }
  pad(n: number): void {
    this.room((n - (this.length % n)) % n);
  }
  bytes(b: Buffer): void {
    const at = this.room(b.length);
    b.copy(this.buf, at);
  }
  write(type: string, v: DBusValue): void {
    const c = type[0]!;
    this.pad(alignOf(type));
    const fixed = FIXED[c];
    if (fixed) {
      const at = this.room(fixed[0]);
      return void numeric(this.buf, `write${fixed[1]}${fixed[0] > 1 ? 'LE' : ''}`)(scalar(c, v), at);
    }
    if (c === 's' || c === 'o' || c === 'g') {
      const b = Buffer.from(typeof v === 'string' ? v : fail(`a string is needed for "${c}"`), 'utf8');
      if (c === 'g' && b.length > 255) fail('signature too long');
      this.write(c === 'g' ? 'y' : 'u', b.length);
      this.bytes(b);
      return this.write('y', 0);
    }
    if (c === 'v') {
      if (!(v instanceof Variant)) return fail('a Variant is needed for "v"');
      if (splitSignature(v.signature).length !== 1) fail('a variant holds one complete type');
      this.write('g', v.signature);
      return this.write(v.signature, v.value);
    }
    if (c === 'a') {
      const elem = type.slice(1);
      this.write('u', 0);
      const lengthAt = this.length - 4;
      this.pad(alignOf(elem)); // present even when the array is empty, not counted in its length
      const start = this.length;
      if (elem === 'y' && Buffer.isBuffer(v)) this.bytes(v);
      else {
        const dict = elem[0] === '{' && v !== null && typeof v === 'object' && v.constructor === Object;
        const items = Array.isArray(v)
          ? v
          : v instanceof Map
            ? [...v.entries()]
            : dict
              ? Object.entries(v)
              : null;
        for (const item of items ?? fail(`an array is needed for "${type}"`))
          this.write(elem, item as DBusValue);
      }
      if (this.length - start > MAX_ARRAY) fail('array too long');
      return void this.buf.writeUInt32LE(this.length - start, lengthAt);
    }
    // struct or dict entry
    const fields = splitSignature(type.slice(1, -1));
    if (!Array.isArray(v) || v.length !== fields.length)
      fail(`${fields.length} fields are needed for "${type}"`);
    fields.forEach((f, k) => this.write(f, (v as DBusValue[])[k]!));
  }
}

/** Marshal values of `signature` at offset 0 (a message body starts 8-aligned, so that is exact). */
export function marshal(signature: string, values: DBusValue[]): Buffer {
  const types = splitSignature(signature);
  if (types.length !== values.length) fail(`${types.length} values are needed for "${signature}"`);
  const w = new Writer();
  types.forEach((t, k) => w.write(t, values[k]!));
  return w.buf.subarray(0, w.length);
}

export class Reader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
    readonly le = true,
  ) {}
  /** Skip the padding to `align`, then take n bytes; returns their offset. */
  private take(n: number, align = n): number {
    this.pos += (align - (this.pos % align)) % align;
    if (this.pos + n > this.buf.length) fail('message truncated');
    this.pos += n;
    return this.pos - n;
  }
  read(type: string): DBusValue {
    const c = type[0]!;
    const fixed = FIXED[c];
    if (fixed) {
      const at = this.take(fixed[0]);
      const v = numeric(this.buf, `read${fixed[1]}${fixed[0] > 1 ? (this.le ? 'LE' : 'BE') : ''}`)(at);
      return c === 'b' ? v !== 0 : v;
    }
    if (c === 's' || c === 'o' || c === 'g') {
      const n = this.read(c === 'g' ? 'y' : 'u') as number;
      const at = this.take(n + 1, 1);
      if (this.buf[at + n] !== 0) fail('string not NUL-terminated');
      return this.buf.toString('utf8', at, at + n);
    }
    if (c === 'v') {
      const sig = this.read('g') as string;
      if (splitSignature(sig).length !== 1) fail('bad variant signature');
      return new Variant(sig, this.read(sig));
    }
    if (c === 'a') {
      const elem = type.slice(1);
      const n = this.read('u') as number;
      if (n > MAX_ARRAY) fail('array too long');
      this.take(0, alignOf(elem));
      const end = this.pos + n;
      if (end > this.buf.length) fail('message truncated');
      if (elem === 'y') return this.buf.subarray(this.take(n, 1), end);
      const out: DBusValue[] = [];
      while (this.pos < end) out.push(this.read(elem));
      if (this.pos !== end) fail('array length mismatch');
      return out;
    }
    this.take(0, 8); // struct or dict entry
    return splitSignature(type.slice(1, -1)).map((f) => this.read(f));
  }
}

export function unmarshal(signature: string, buf: Buffer, le = true): DBusValue[] {
  const r = new Reader(buf, 0, le);
  const out = splitSignature(signature).map((t) => r.read(t));
  if (r.pos !== buf.length) fail('trailing bytes after the body');
  return out;
}

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
      else p.reject(new DBusError(String(fields.get(4)), typeof body[0] === 'string' ? body[0] : ''));
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

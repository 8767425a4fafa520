/**
 * The D-Bus wire format (D-Bus Specification, "Type System / Marshaling (Wire Format)"): type
 * signatures, Writer/Reader with alignment, marshal/unmarshal. Split from dbus.ts (the connection).
 */
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

export const fail = (text: string): never => {
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

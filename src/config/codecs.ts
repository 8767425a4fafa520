/**
 * The building blocks of the field table (fields.ts): a Codec says what one value may be (the
 * check of a profile read from the file) and how a `key=value` string becomes that value (the
 * parse of `--set`, a flag or the wizard). A Field adds what the table knows about a key: whether
 * it is required, its help, the providers it applies to, its `profile add`/`edit` flag and how
 * `profile show` prints it. The Profile type is inferred from the table (Shape).
 */
import { UsageError } from '../errors/index.js';
import { HAS_CRLF, HOST_RE, type Provider } from './values.js';

/** A validation failure: the dotted field path and a message that names it. */
export class Invalid extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

export type Obj = Record<string, unknown>;

/** "a, b or c" */
export const orList = (v: readonly string[]) =>
  v.length > 1 ? `${v.slice(0, -1).join(', ')} or ${v.at(-1)}` : v.join('');
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Codec<T> {
  /** What `profile keys --json` calls the value: string, int, number, list, intlist, map, hostport, object. */
  readonly kind: string;
  /** Throws Invalid (naming `path`) unless `v` (never undefined here) is a valid value. */
  check(v: unknown, path: string): void;
  /** The message for a required value that is missing (default: "PATH is required"). */
  missing?(path: string): string;
  /** `--set KEY=RAW`: the value to store (`current` is what the draft holds). No parse: not settable as one key. */
  parse?(raw: string, key: string, current: unknown): unknown;
  /** Maps only: `--set KEY.NAME=RAW` and `--unset KEY.NAME`. */
  entry?: {
    set(current: unknown, name: string, raw: string): unknown;
    unset(current: unknown, name: string): unknown;
  };
  /** Groups only: the fields inside (`smtp.port`). */
  readonly fields?: FieldTable;
  /** Closed lists only: the values, for the derived help. */
  readonly values?: readonly string[];
  /** `profile show`'s text for a value. */
  format?(v: T): string;
  /** Never set: carries the value type for Shape. */
  readonly _type?: T;
}

/**
 * A key's flag on `profile add` and `profile edit`: its help (true: the key's help), or the whole
 * spec. The name defaults to the key in kebab case (`clientId` -> `--client-id`, `smtp.security`
 * -> `--smtp-security`).
 */
export type FlagSpec = true | string | Flag;

export interface Flag {
  /** `--NAME <value>` */
  name?: string;
  help: string;
  /** Maps only: a repeatable `--NAME name=value` that sets one entry. */
  repeat?: { example: string };
}

export interface Field<T = unknown, R extends boolean = boolean> {
  type: Codec<T>;
  required: R;
  /** `profile keys`; closed lists default to their values ("a, b or c"). */
  help?: string;
  /** The providers the key means something for (default: all). */
  providers?: readonly Provider[];
  flag?: FlagSpec;
  /** `profile show`: false hides the key (it is still in --json). */
  show?: false;
  /** `profile show`'s text, when the codec's (or String) will not do. */
  format?(v: T): string | undefined;
}

export type FieldTable = Readonly<Record<string, Field<unknown>>>;

type Simplify<T> = { [K in keyof T]: T[K] };
type TypeOf<F> = F extends { type: Codec<infer T> } ? T : never;
/** The object type a table describes: required fields as such, the others optional. */
export type Shape<Tbl> = Simplify<
  { -readonly [K in keyof Tbl as Tbl[K] extends { required: true } ? K : never]: TypeOf<Tbl[K]> } & {
    -readonly [K in keyof Tbl as Tbl[K] extends { required: true } ? never : K]?: TypeOf<Tbl[K]>;
  }
>;

type Spec<T> = Omit<Field<T>, 'type' | 'required'>;
export const req = <T>(type: Codec<T>, spec: Spec<T> = {}): Field<T, true> => ({
  type,
  required: true,
  ...spec,
});
export const opt = <T>(type: Codec<T>, spec: Spec<T> = {}): Field<T, false> => ({
  type,
  required: false,
  ...spec,
});

export function onlyKeys(o: Obj, known: (k: string) => boolean, prefix: string): void {
  for (const k of Object.keys(o)) {
    if (!known(k)) throw new Invalid(prefix + k, `unknown field ${JSON.stringify(prefix + k)}`);
  }
}

/** Check `o` against a table: no unknown keys, then each field in table order. */
export function checkTable(o: Obj, table: FieldTable, prefix: string): void {
  onlyKeys(o, (k) => Object.hasOwn(table, k), prefix);
  for (const [key, f] of Object.entries(table)) {
    const path = prefix + key;
    const v = o[key];
    if (v === undefined) {
      if (f.required) throw new Invalid(path, f.type.missing?.(path) ?? `${path} is required`);
      continue;
    }
    f.type.check(v, path);
  }
}

const badValue = (message: string) => new UsageError(message, { code: 'bad_value' });

function parseInt10(key: string, raw: string): number {
  if (!/^\d{1,10}$/.test(raw.trim()))
    throw badValue(`${key} must be a whole number (got ${JSON.stringify(raw)})`);
  return Number(raw.trim());
}

function splitList(raw: string): string[] {
  return raw
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

const asIs = (raw: string) => raw;

/** A one-line string (`multiline`: line breaks allowed), with an optional check that returns the complaint. */
export function text(
  check?: (s: string, path: string) => string | undefined,
  multiline = false,
): Codec<string> {
  return {
    kind: 'string',
    check(v, path) {
      if (typeof v !== 'string') throw new Invalid(path, `${path} must be a string`);
      if (!multiline && HAS_CRLF.test(v)) throw new Invalid(path, `${path} must not contain line breaks`);
      const bad = check?.(v, path);
      if (bad) throw new Invalid(path, bad);
    },
    parse: asIs,
  };
}

const oneOfMessage = (path: string, values: readonly string[], s: string) =>
  `${path} must be one of: ${values.join(', ')} (got ${JSON.stringify(s)})`;

export function oneOf<const V extends string>(values: readonly V[]): Codec<V> {
  return {
    ...text((s, path) => (values.includes(s as V) ? undefined : oneOfMessage(path, values, s))),
    values,
  } as Codec<V>;
}

export const httpsUrl = (): Codec<string> =>
  text((s, path) => {
    try {
      if (new URL(s).protocol === 'https:') return undefined;
    } catch {
      // fall through
    }
    return `${path} must be an https:// URL`;
  });

export function int(min: number, max: number): Codec<number> {
  return {
    kind: 'int',
    check(v, path) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        throw new Invalid(path, `${path} must be a whole number from ${min} to ${max}`);
    },
    parse: (raw, key) => parseInt10(key, raw),
  };
}

export function num(min: number, max: number): Codec<number> {
  const message = (path: string) => `${path} must be a number from ${min} to ${max}`;
  return {
    kind: 'number',
    check(v, path) {
      if (typeof v !== 'number' || !(v >= min && v <= max)) throw new Invalid(path, message(path));
    },
    missing: message,
    parse(raw, key) {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw badValue(`${key} must be a number (got ${JSON.stringify(raw)})`);
      return n;
    },
  };
}

/** true or false; given as true/false, yes/no, on/off or 1/0. */
export function bool(): Codec<boolean> {
  const words: Record<string, boolean> = {
    true: true,
    yes: true,
    on: true,
    1: true,
    false: false,
    no: false,
    off: false,
    0: false,
  };
  return {
    kind: 'boolean',
    check(v, path) {
      if (typeof v !== 'boolean') throw new Invalid(path, `${path} must be true or false`);
    },
    parse(raw, key) {
      const b = words[raw.trim().toLowerCase()];
      if (b === undefined) throw badValue(`${key} must be true or false (got ${JSON.stringify(raw)})`);
      return b;
    },
  };
}

/** A list of strings, each checked (the complaint names the item); given as "a,b c". */
export function list<T extends string = string>(
  each: (s: string, path: string) => string | undefined,
  values?: readonly T[],
): Codec<T[]> {
  const message = (path: string) => `${path} must be a list of strings`;
  return {
    kind: 'list',
    check(v, path) {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Invalid(path, message(path));
      for (const s of v) {
        const bad = each(s, path);
        if (bad) throw new Invalid(path, bad);
      }
    },
    missing: message,
    parse: (raw) => splitList(raw),
    ...(values ? { values } : {}),
    format: (v) => v.join(' '),
  };
}

export const listOf = <const V extends string>(values: readonly V[]): Codec<V[]> =>
  list<V>((s, path) => (values.includes(s as V) ? undefined : oneOfMessage(path, values, s)), values);

/** A list of whole numbers from min to max, given as "1,2 3"; `what` names them in the complaint. */
export function intList(min: number, max: number, what: string): Codec<number[]> {
  return {
    kind: 'intlist',
    check(v, path) {
      if (!Array.isArray(v) || !v.every((c) => Number.isInteger(c) && c >= min && c <= max))
        throw new Invalid(path, `${path} must be a list of ${what} from ${min} to ${max}`);
    },
    parse: (raw, key) => splitList(raw).map((s) => parseInt10(key, s)),
    format: (v) => v.join(' '),
  };
}

/** A copy of a map without a prototype: `__proto__` or `constructor` are names like any other. */
const bare = (v: unknown): Record<string, string> =>
  Object.assign(Object.create(null) as Record<string, string>, v ?? {});

/** NAME: VALUE pairs; given whole as "a=1,b=2" or one at a time as KEY.NAME=VALUE. */
export function stringMap(
  checkEntry: (name: string, value: unknown, path: string) => void,
): Codec<Record<string, string>> {
  return {
    kind: 'map',
    check(v, path) {
      if (!isObj(v)) throw new Invalid(path, `${path} must be an object of NAME: VALUE`);
      for (const [k, x] of Object.entries(v)) checkEntry(k, x, path);
    },
    parse(raw, key) {
      const map = bare(undefined);
      for (const pair of splitList(raw)) {
        const i = pair.indexOf('=');
        if (i <= 0) throw badValue(`${key} must be NAME=VALUE pairs (got ${JSON.stringify(pair)})`);
        map[pair.slice(0, i)] = pair.slice(i + 1);
      }
      return map;
    },
    entry: {
      set(current, name, raw) {
        const map = bare(current);
        map[name] = raw;
        return map;
      },
      unset(current, name) {
        const map = bare(current);
        delete map[name];
        return map;
      },
    },
    format: (v) =>
      Object.entries(v)
        .map(([k, x]) => `${k}=${x}`)
        .join(' '),
  };
}

/** An object of its own fields (`smtp.port`); `notObject` is the complaint when it is not an object. */
export function group<const Tbl extends FieldTable>(
  fields: Tbl,
  notObject: (path: string) => string,
  extra: Pick<Codec<Shape<Tbl>>, 'parse' | 'format'> & { kind?: string } = {},
): Codec<Shape<Tbl>> {
  return {
    kind: 'object',
    ...extra,
    fields,
    check(v, path) {
      if (!isObj(v)) throw new Invalid(path, notObject(path));
      checkTable(v, fields, path + '.');
    },
    missing: notObject,
  };
}

/** A mail server: host, port, security; given whole as host:port (`guess` picks the security by port). */
export function server<const S extends string>(
  label: string,
  security: readonly S[],
  example: string,
  guess: (port: number) => S,
) {
  const fields = {
    host: req(
      text((s, path) => (HOST_RE.test(s) ? undefined : `${path} must be a host name or IP address`)),
      {
        help: `${label} host`,
      },
    ),
    port: req(int(1, 65535), { help: `${label} port` }),
    security: req(oneOf(security), {
      flag: { name: `${label.toLowerCase()}-security`, help: orList(security) },
    }),
  };
  return group(fields, (path) => `${path} must be an object with host, port and security`, {
    kind: 'hostport',
    parse(raw, key, current) {
      const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(raw.trim());
      if (!m) throw badValue(`${key} must be host:port, like ${example} (got ${JSON.stringify(raw)})`);
      const existing = isObj(current) ? current : {};
      const port = Number(m[2]);
      return {
        ...existing,
        host: m[1]!.replace(/^\[|\]$/g, ''),
        port,
        security: existing.security ?? guess(port),
      };
    },
    format: (s) => `${s.host}:${s.port} (${s.security})`,
  });
}

/**
 * What the field table (fields.ts) gives the rest of the code: the validation of a profile, the
 * keys `--set`/`--unset` accept (and `profile keys` lists), the `profile add`/`edit` flags and
 * the rows of `profile show`. Nothing here names a key: a new entry in the table appears in all
 * of them.
 *
 * A key is matched case-insensitively with dashes, underscores and dots ignored, so `client-id`,
 * `client_id` and `clientId` are one key, and `smtp-port` is `smtp.port`. Values are parsed by
 * the key's codec (numbers, lists, host:port); the whole profile is validated afterwards, so a
 * value is checked both on its own and in context.
 */
import { UsageError } from '../errors/index.js';
import { checkTable, type Codec, type Field, type FieldTable, Invalid, isObj, orList } from './codecs.js';
import { PROFILE_FIELDS, type Profile, RULES } from './fields.js';
import { PROVIDERS, type Provider } from './values.js';
import { plainText } from '../util/text.js';

/** Check a profile; throws Invalid naming the first bad field. Returns it typed. */
export function validateProfile(raw: unknown): Profile {
  if (!isObj(raw)) throw new Invalid('', 'a profile must be a JSON object');
  checkTable(raw, PROFILE_FIELDS, '');
  const p = raw as Profile;
  for (const rule of RULES) {
    const bad = rule(p);
    if (bad) throw bad;
  }
  return p;
}

export interface KeySpec {
  /** Dotted path in the profile: `smtp.port`. */
  key: string;
  kind: string;
  help: string;
  providers: readonly Provider[];
  codec: Codec<unknown>;
}

/** A key's help: its own, or a closed list's values ("a, b or c"). */
const helpOf = (f: Field) => f.help ?? (f.type.values ? orList(f.type.values) : '');

function walk(table: FieldTable, prefix: string, visit: (path: string, f: Field) => void): void {
  for (const [key, f] of Object.entries(table)) {
    visit(prefix + key, f);
    if (f.type.fields) walk(f.type.fields, prefix + key + '.', visit);
  }
}

/** Every key `--set` takes, in table order (a group such as smtp first when it takes host:port). */
export const KEYS: readonly KeySpec[] = (() => {
  const out: KeySpec[] = [];
  const providersOf = new Map<string, readonly Provider[]>();
  walk(PROFILE_FIELDS, '', (key, f) => {
    const top = key.split('.')[0]!;
    const providers = f.providers ?? providersOf.get(top) ?? PROVIDERS;
    if (!key.includes('.')) providersOf.set(key, providers);
    if (!f.type.parse) return;
    out.push({ key, kind: f.type.kind, help: helpOf(f), providers, codec: f.type });
  });
  return out;
})();

export interface FlagSpec {
  /** `--NAME <value>` */
  name: string;
  key: string;
  help: string;
  /** A repeatable `--NAME name=value` for one entry of a map key. */
  repeat?: { example: string };
}

const kebab = (key: string) => key.replace(/\./g, '-').replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** The flags of `profile add` and `profile edit`, in table order. */
export const FLAGS: readonly FlagSpec[] = (() => {
  const out: FlagSpec[] = [];
  walk(PROFILE_FIELDS, '', (key, f) => {
    const flag =
      f.flag === true ? { help: helpOf(f) } : typeof f.flag === 'string' ? { help: f.flag } : f.flag;
    if (flag) out.push({ ...flag, key, name: flag.name ?? kebab(key) });
  });
  return out;
})();

const norm = (k: string) => k.toLowerCase().replace(/[-_.]/g, '');

/** True when two spellings name one key (`client-id`, `clientId`). */
export const sameKey = (a: string, b: string) => norm(a) === norm(b);

/** True when the settings give `key`, however it is spelled. */
export const givesKey = (settings: ReadonlyArray<readonly [string, unknown]>, key: string) =>
  settings.some(([k]) => sameKey(k, key));

export function findKey(key: string): KeySpec | undefined {
  const n = norm(key);
  return KEYS.find((f) => norm(f.key) === n);
}

/** `authParams.NAME` (or `authParam.NAME`): a map key and the entry's name. */
function findEntry(key: string): { spec: KeySpec; name: string } | undefined {
  const i = key.indexOf('.');
  if (i <= 0 || i === key.length - 1) return undefined;
  const head = norm(key.slice(0, i));
  const spec = KEYS.find((f) => f.codec.entry && (norm(f.key) === head || norm(f.key) === head + 's'));
  return spec ? { spec, name: key.slice(i + 1) } : undefined;
}

type Draft = Record<string, unknown>;

function getPath(draft: Draft, path: string): unknown {
  let v: unknown = draft;
  for (const p of path.split('.')) v = isObj(v) ? v[p] : undefined;
  return v;
}

function setPath(draft: Draft, path: string, value: unknown): void {
  const parts = path.split('.');
  let obj: Draft = draft;
  for (const p of parts.slice(0, -1)) {
    const next = obj[p];
    if (typeof next !== 'object' || next === null) obj[p] = {};
    obj = obj[p] as Draft;
  }
  const last = parts[parts.length - 1]!;
  if (value === undefined) delete obj[last];
  else obj[last] = value;
}

/** Apply one `key=value` (value undefined: unset) to a draft profile. */
export function applySetting(draft: Draft, key: string, value: string | undefined): void {
  const spec = findKey(key);
  if (!spec) {
    const entry = findEntry(key);
    if (!entry) {
      throw new UsageError(`unknown profile key ${JSON.stringify(key)}`, {
        code: 'unknown_key',
        hint: 'run `oauthmail profile keys` to list the keys you can set',
      });
    }
    const { spec: map, name } = entry;
    const current = getPath(draft, map.key);
    setPath(
      draft,
      map.key,
      value === undefined
        ? map.codec.entry!.unset(current, name)
        : map.codec.entry!.set(current, name, value),
    );
    return;
  }
  if (value === undefined) setPath(draft, spec.key, undefined);
  else setPath(draft, spec.key, spec.codec.parse!(value, spec.key, getPath(draft, spec.key)));
}

/** `profile show`: [key, text] for each key the table shows and the profile has. */
export function showRows(p: Profile): Array<[key: string, text: string]> {
  const rows: Array<[string, string]> = [];
  for (const [key, f] of Object.entries(PROFILE_FIELDS) as Array<[string, Field]>) {
    const v = (p as Record<string, unknown>)[key];
    if (f.show === false || v === undefined) continue;
    const text = f.format ? f.format(v) : f.type.format ? f.type.format(v) : plainText(v);
    if (text !== undefined && text !== '') rows.push([key, text]);
  }
  return rows;
}

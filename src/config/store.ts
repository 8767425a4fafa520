/**
 * The config file: one JSON document with a version, the default profile and the profiles.
 *
 * Reading never repairs: a file that cannot be parsed or does not match the schema is reported
 * with its path (and line:column for syntax errors) and is never overwritten, so a hand edit
 * that went wrong is not lost. Writing is atomic (temp + fsync + rename, 0600 in a 0700 folder)
 * and happens under a cross-process lock with the file re-read inside the lock, so two
 * concurrent `profile edit` calls cannot lose each other's change.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError, UsageError } from '../errors/index.js';
import { atomicWriteFile, readFileIfExists } from '../util/fs.js';
import type { Paths } from './paths.js';
import {
  type BrokenProfile,
  CONFIG_VERSION,
  type Config,
  emptyConfig,
  Invalid,
  type Profile,
  validateConfigTop,
  validateProfile,
  validateProfileName,
} from './schema.js';

export type LockFn = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

const noLock: LockFn = (_name, fn) => fn();

function lineCol(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `${line}:${col}`;
}

export function parseConfigText(text: string, file: string): Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const m = /position (\d+)/.exec(msg);
    const where = m ? lineCol(text, Number(m[1])) : lineCol(text, text.length);
    // V8 quotes the text around the error ('Unexpected token 'a', "…" is not valid JSON'): drop
    // that quote (it may span lines, or hold a secret pasted into the wrong file), keep one line
    const what = msg
      .replace(/ in JSON at position \d+[\s\S]*$/, '')
      .replace(/, "[\s\S]*" is not valid JSON$/, '')
      .replace(/^Unexpected end of JSON input$/, 'unexpected end of file')
      // eslint-disable-next-line no-control-regex -- control characters are what we escape
      .replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
    throw new ConfigError(`cannot read config ${file}:${where}: ${what}`, {
      code: 'config_syntax',
      hint: `fix the file by hand (it was not changed), or move it away to start afresh`,
      cause: e,
    });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`cannot read config ${file}: the top level must be a JSON object`, {
      code: 'config_invalid',
      hint: 'fix the file by hand (it was not changed), or move it away to start afresh',
    });
  }
  let top: ReturnType<typeof validateConfigTop>;
  try {
    top = validateConfigTop(raw as Record<string, unknown>);
  } catch (e) {
    if (!(e instanceof Invalid)) throw e;
    throw new ConfigError(`invalid config ${file}: ${e.message}`, {
      code: 'config_invalid',
      hint: 'fix the file by hand (it was not changed)',
    });
  }
  // A map without a prototype: a profile named `constructor` or `toString` is just a name.
  const profiles: Record<string, Profile> = Object.create(null) as Record<string, Profile>;
  const broken: Record<string, BrokenProfile> = Object.create(null) as Record<string, BrokenProfile>;
  for (const [name, value] of Object.entries(top.profiles)) {
    try {
      profiles[name] = validateProfile(value);
    } catch (e) {
      if (!(e instanceof Invalid)) throw e;
      // kept aside: the other profiles go on working, and this one can be mended with `profile edit`
      broken[name] = {
        raw: value,
        message: `invalid config ${file}: profile ${JSON.stringify(name)}: ${e.message}`,
      };
    }
  }
  const config: Config = { version: CONFIG_VERSION, profiles };
  if (Object.keys(broken).length) config.broken = broken;
  if (top.id !== undefined) config.id = top.id;
  if (top.defaultProfile !== undefined) config.defaultProfile = top.defaultProfile;
  return config;
}

export class ConfigStore {
  constructor(
    readonly paths: Paths,
    private readonly lock: LockFn = noLock,
  ) {}

  get file(): string {
    return this.paths.configFile;
  }

  async load(): Promise<Config> {
    let text: string | undefined;
    try {
      text = await readFileIfExists(this.file);
    } catch (e) {
      throw new ConfigError(
        `cannot read config ${this.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        {
          code: 'config_unreadable',
          hint: 'check the file permissions',
          cause: e,
        },
      );
    }
    if (text === undefined) return emptyConfig();
    return parseConfigText(text, this.file);
  }

  /** Read-modify-write under the lock; `fn` may throw to abort without writing. */
  async update<T>(fn: (config: Config) => T | Promise<T>): Promise<T> {
    return this.lock('config', async () => {
      const config = await this.load();
      const result = await fn(config);
      await this.save(config);
      return result;
    });
  }

  /**
   * The config's ID (Config.id), made and saved on first use. Undefined when it cannot be saved
   * (a read-only config): the keychain then uses the names shared by every config.
   */
  async id(): Promise<string | undefined> {
    const known = (await this.load()).id;
    if (known) return known;
    try {
      return await this.update((config) => (config.id ??= randomBytes(8).toString('hex')));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return undefined;
      throw e;
    }
  }

  private async save(config: Config): Promise<void> {
    const out: Record<string, unknown> = { version: CONFIG_VERSION };
    if (config.id) out.id = config.id;
    if (config.defaultProfile) out.defaultProfile = config.defaultProfile;
    // broken profiles are written back as they were found (never dropped by an unrelated write)
    const brokenRaw = Object.entries(config.broken ?? {}).filter(([n]) => !(n in config.profiles));
    out.profiles = { ...config.profiles, ...Object.fromEntries(brokenRaw.map(([n, b]) => [n, b.raw])) };
    // under the config lock: temps of crashed writes are cleaned here
    await atomicWriteFile(this.file, JSON.stringify(out, null, 2) + '\n', 0o600, { removeStaleTemps: true });
  }
}

/** Which profile a command acts on: explicit name, then OAUTHMAIL_PROFILE, then the default. */
export function resolveProfileName(
  config: Config,
  explicit: string | undefined,
  env: NodeJS.ProcessEnv,
): { name: string; profile: Profile } {
  const name = explicit || env.OAUTHMAIL_PROFILE || config.defaultProfile;
  if (!name) {
    const names = Object.keys(config.profiles);
    if (names.length === 1) return { name: names[0]!, profile: config.profiles[names[0]!]! };
    throw new ConfigError(
      names.length === 0 ? 'no profile is configured' : 'no profile given and no default set',
      {
        code: 'no_profile',
        hint:
          names.length === 0
            ? 'create one: oauthmail profile add NAME --provider microsoft --client-id ID'
            : `name one with -p NAME, or set a default: oauthmail profile use ${names[0]}`,
      },
    );
  }
  const bad = validateProfileName(name);
  if (bad) throw new UsageError(bad, { code: 'bad_profile_name' });
  const broken = config.broken?.[name];
  if (broken) throw brokenProfileError(name, broken);
  const profile = config.profiles[name];
  if (!profile) {
    const names = Object.keys(config.profiles);
    throw new ConfigError(`no profile named ${JSON.stringify(name)}`, {
      code: 'profile_not_found',
      hint: names.length ? `known profiles: ${names.join(', ')}` : 'create it: oauthmail profile add ' + name,
    });
  }
  return { name, profile };
}

/** The error for a command that needs a profile the file holds in a form that does not validate. */
export function brokenProfileError(name: string, broken: BrokenProfile): ConfigError {
  return new ConfigError(broken.message, {
    code: 'config_invalid',
    hint: `fix it with \`oauthmail profile edit ${name} --set KEY=VALUE\` (see oauthmail profile keys) or by hand; other profiles are not affected`,
  });
}

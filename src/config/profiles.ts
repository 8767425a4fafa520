/**
 * Profile operations: add, edit, rename, remove, use. Pure config work plus the secret moves
 * that go with renaming and removing; the CLI layer only parses flags and prints.
 */
import { ConfigError, UsageError } from '../errors/index.js';
import type { SecretKind, SecretStore } from '../secrets/types.js';
import { SECRET_KINDS } from '../secrets/types.js';
import { applySetting, givesKey, sameKey } from './derive.js';
import { defaultsFor, scopesFor } from './presets.js';
import {
  type Config,
  Invalid,
  type Profile,
  PROVIDERS,
  validateProfile,
  validateProfileName,
} from './schema.js';
import { brokenProfileError, type ConfigStore } from './store.js';

export type Setting = [key: string, value: string | undefined];

function checkName(name: string): void {
  const bad = validateProfileName(name);
  if (bad) throw new UsageError(bad, { code: 'bad_profile_name' });
}

function validate(draft: Record<string, unknown>): Profile {
  try {
    return validateProfile(draft);
  } catch (e) {
    if (!(e instanceof Invalid)) throw e;
    throw new UsageError(e.message, {
      code: 'bad_value',
      hint: 'run `oauthmail profile keys` to see what each key takes',
    });
  }
}

const sameList = (a: readonly string[] | undefined, b: readonly string[]) =>
  !!a && a.length === b.length && a.every((x, i) => x === b[i]);

/** Build a complete profile from settings over the provider's defaults. */
export function buildProfile(settings: readonly Setting[]): Profile {
  const providerSetting = [...settings].reverse().find(([k]) => sameKey(k, 'provider'));
  const provider = providerSetting?.[1] ?? 'microsoft';
  if (!(PROVIDERS as readonly string[]).includes(provider)) {
    throw new UsageError(
      `provider must be one of: ${PROVIDERS.join(', ')} (got ${JSON.stringify(provider)})`,
      {
        code: 'bad_value',
      },
    );
  }
  const draft: Record<string, unknown> = { ...defaultsFor(provider as Profile['provider']) };
  for (const [k, v] of settings) applySetting(draft, k, v);
  // app-only flows always need a credential; default to a secret unless the user chose a type
  if (
    !givesKey(settings, 'clientType') &&
    draft.clientType === 'public' &&
    draft.flow === 'client-credentials'
  )
    draft.clientType = 'secret';
  if (!Array.isArray(draft.scopes)) {
    draft.scopes = scopesFor(
      draft.provider as Profile['provider'],
      (draft.capabilities as Profile['capabilities']) ?? [],
      draft.flow as Profile['flow'],
      draft.transport as Profile['transport'],
    );
  }
  if (draft.clientId === undefined) {
    throw new UsageError('clientId is required', {
      code: 'missing_value',
      hint: "give the app registration's client ID with --client-id ID",
    });
  }
  if (draft.provider === 'custom' && (draft.scopes as string[]).length === 0) {
    throw new UsageError('a custom provider needs scopes', {
      code: 'missing_value',
      hint: 'give them with --scopes "a b c"',
    });
  }
  return validate(draft);
}

/** Apply settings to a profile as found in a file that does not validate, then validate it. */
export function editRawProfile(raw: unknown, settings: readonly Setting[]): Profile {
  const draft =
    raw && typeof raw === 'object' && !Array.isArray(raw)
      ? (structuredClone(raw) as Record<string, unknown>)
      : {};
  for (const [k, v] of settings) applySetting(draft, k, v);
  return validate(draft);
}

/** Apply settings to an existing profile; recompute default scopes when capabilities or flow change. */
export function editProfile(existing: Profile, settings: readonly Setting[]): Profile {
  const draft = structuredClone(existing) as unknown as Record<string, unknown>;
  const before = scopesFor(existing.provider, existing.capabilities, existing.flow, existing.transport);
  for (const [k, v] of settings) applySetting(draft, k, v);
  if (!givesKey(settings, 'scopes') && sameList(existing.scopes, before)) {
    draft.scopes = scopesFor(
      draft.provider as Profile['provider'],
      (draft.capabilities as Profile['capabilities']) ?? [],
      draft.flow as Profile['flow'],
      draft.transport as Profile['transport'],
    );
  }
  return validate(draft);
}

export class Profiles {
  constructor(
    private readonly store: ConfigStore,
    /** Opens the secret store a profile uses (its `storage` setting decides which). */
    private readonly secretsFor: (profile: Pick<Profile, 'storage'>) => Promise<SecretStore>,
  ) {}

  async list(): Promise<Config> {
    return this.store.load();
  }

  async add(name: string, settings: readonly Setting[], opts: { use?: boolean } = {}): Promise<Profile> {
    checkName(name);
    const profile = buildProfile(settings);
    await this.store.update((config) => {
      if (config.profiles[name]) {
        throw new UsageError(`a profile named ${JSON.stringify(name)} already exists`, {
          code: 'duplicate_profile',
          hint: `change it with \`oauthmail profile edit ${name} --set KEY=VALUE\`, or pick another name`,
        });
      }
      config.profiles[name] = profile;
      if (opts.use || !config.defaultProfile) config.defaultProfile = name;
    });
    return profile;
  }

  async edit(name: string, settings: readonly Setting[]): Promise<Profile> {
    checkName(name);
    if (settings.length === 0) {
      throw new UsageError('nothing to change', {
        code: 'bad_usage',
        hint: 'use --set KEY=VALUE or --unset KEY',
      });
    }
    return this.store.update((config) => {
      const broken = config.broken?.[name];
      // a profile broken by a hand edit is mended from what the file holds
      const next = broken
        ? editRawProfile(broken.raw, settings)
        : editProfile(this.require(config, name), settings);
      if (broken) delete config.broken![name];
      config.profiles[name] = next;
      return next;
    });
  }

  async rename(from: string, to: string): Promise<void> {
    checkName(from);
    checkName(to);
    let profile: Profile | undefined;
    await this.store.update((config) => {
      profile = this.require(config, from);
      if (config.profiles[to]) {
        throw new UsageError(`a profile named ${JSON.stringify(to)} already exists`, {
          code: 'duplicate_profile',
          hint: 'remove it first, or pick another name',
        });
      }
    });
    // Copy secrets first, then switch the config, then delete the old copies: a crash in
    // between leaves a duplicate secret, never a lost one.
    const secrets = await this.secretsFor(profile!);
    const moved: SecretKind[] = [];
    for (const kind of SECRET_KINDS) {
      const v = await secrets.get(from, kind);
      if (v !== undefined) {
        await secrets.set(to, kind, v);
        moved.push(kind);
      }
    }
    await this.store.update((config) => {
      const p = this.require(config, from);
      delete config.profiles[from];
      config.profiles[to] = p;
      if (config.defaultProfile === from) config.defaultProfile = to;
    });
    for (const kind of moved) await secrets.delete(from, kind);
  }

  /**
   * Remove a profile and its secrets; `deleted` names the secret kinds removed. A keychain this
   * session cannot reach does not stop it: the profile goes, and `notRemoved` says why its
   * keychain items stay.
   */
  async remove(name: string): Promise<{ deleted: SecretKind[]; notRemoved?: string }> {
    checkName(name);
    const config = await this.store.load();
    const broken = config.broken?.[name];
    const storage = (broken?.raw as { storage?: unknown } | undefined)?.storage;
    const profile: Pick<Profile, 'storage'> = broken
      ? { storage: storage === 'keychain' || storage === 'file' ? storage : 'auto' }
      : this.require(config, name);
    const deleted: SecretKind[] = [];
    let notRemoved: string | undefined;
    try {
      const secrets = await this.secretsFor(profile);
      for (const kind of SECRET_KINDS) {
        if (await secrets.delete(name, kind)) deleted.push(kind);
      }
    } catch (e) {
      if ((e as { code?: string }).code !== 'keychain_unavailable') throw e;
      notRemoved = (e as Error).message;
    }
    await this.store.update((c) => {
      delete c.profiles[name];
      if (c.broken) delete c.broken[name];
      if (c.defaultProfile === name) delete c.defaultProfile;
    });
    return { deleted, ...(notRemoved ? { notRemoved } : {}) };
  }

  async use(name: string): Promise<void> {
    checkName(name);
    await this.store.update((config) => {
      this.require(config, name);
      config.defaultProfile = name;
    });
  }

  require(config: Config, name: string): Profile {
    const broken = config.broken?.[name];
    if (broken) throw brokenProfileError(name, broken);
    const p = config.profiles[name];
    if (!p) {
      const names = Object.keys(config.profiles);
      throw new ConfigError(`no profile named ${JSON.stringify(name)}`, {
        code: 'profile_not_found',
        hint: names.length
          ? `known profiles: ${names.join(', ')}`
          : `create it: oauthmail profile add ${name}`,
      });
    }
    return p;
  }
}

/**
 * The config file's schema: its top level (version, id, default profile, profiles) here; a
 * profile's keys are the field table in fields.ts, checked by validateProfile (derive.ts). This
 * module re-exports what most of the code imports about profiles, so that it has one place to
 * import from.
 */
import { Invalid, isObj, type Obj, onlyKeys } from './codecs.js';
import type { Profile } from './fields.js';
import { PROFILE_NAME_RE } from './values.js';

export * from './values.js';
export { Invalid } from './codecs.js';
export { DEFAULT_RETRY, type Profile, type RetryPolicy } from './fields.js';
export { validateProfile } from './derive.js';

export const CONFIG_VERSION = 1;

export interface Config {
  version: typeof CONFIG_VERSION;
  /**
   * This config's own random ID (CONFIG_ID_RE), set on first use: it keys the config's keychain
   * items, so that two config folders with a profile of the same name keep separate sign-ins.
   */
  id?: string;
  defaultProfile?: string;
  profiles: Record<string, Profile>;
  /**
   * Profiles in the file that do not validate (a hand edit gone wrong), kept as they are: written
   * back unchanged, refused (exit 3, with the fix) by commands that use them, and mended by
   * `profile edit`. One broken profile does not stop the others.
   */
  broken?: Record<string, BrokenProfile>;
}

export interface BrokenProfile {
  /** The profile's JSON as found in the file. */
  raw: unknown;
  /** `invalid config FILE: profile "work": smtp.port must be a whole number from 1 to 65535` */
  message: string;
}

export function emptyConfig(): Config {
  return { version: CONFIG_VERSION, profiles: Object.create(null) as Record<string, Profile> };
}

export const CONFIG_ID_RE = /^[0-9a-f]{16,64}$/;

/** Check the config's top level; profiles are checked one by one with validateProfile. */
export function validateConfigTop(raw: Obj): { id?: string; defaultProfile?: string; profiles: Obj } {
  onlyKeys(raw, (k) => ['version', 'id', 'defaultProfile', 'profiles'].includes(k), '');
  if (raw.id !== undefined && (typeof raw.id !== 'string' || !CONFIG_ID_RE.test(raw.id))) {
    throw new Invalid('id', 'id must be 16 to 64 lowercase hex digits (remove it and one is made anew)');
  }
  if (raw.version !== CONFIG_VERSION) {
    throw new Invalid(
      'version',
      `version must be ${CONFIG_VERSION} (got ${JSON.stringify(raw.version ?? null)})`,
    );
  }
  if (
    raw.defaultProfile !== undefined &&
    (typeof raw.defaultProfile !== 'string' || !PROFILE_NAME_RE.test(raw.defaultProfile))
  ) {
    throw new Invalid('defaultProfile', 'defaultProfile must be a profile name');
  }
  const profiles = raw.profiles ?? {};
  if (!isObj(profiles)) throw new Invalid('profiles', 'profiles must be an object of NAME: profile');
  for (const name of Object.keys(profiles)) {
    if (!PROFILE_NAME_RE.test(name)) {
      throw new Invalid(
        `profiles.${name}`,
        `profile name ${JSON.stringify(name)} is invalid: use letters, digits, . _ - (up to 64)`,
      );
    }
  }
  const out: { id?: string; defaultProfile?: string; profiles: Obj } = { profiles };
  if (typeof raw.id === 'string') out.id = raw.id;
  if (typeof raw.defaultProfile === 'string') out.defaultProfile = raw.defaultProfile;
  return out;
}

export function validateProfileName(name: string): string | undefined {
  if (!PROFILE_NAME_RE.test(name)) {
    return `invalid profile name ${JSON.stringify(name)}: use 1-64 letters, digits, dot, underscore or dash, starting with a letter or digit`;
  }
  return undefined;
}

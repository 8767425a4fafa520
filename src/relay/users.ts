/**
 * `relay user add|list|remove|passwd`: the devices in relay.json. A password is generated here,
 * returned once for the command to show, and only its scrypt hash is written.
 */
import { isEmail } from '../config/schema.js';
import { UsageError } from '../errors/index.js';
import { parseAllow } from './addresses.js';
import { findUser, type RelayStore, type RelayUser, USER_NAME_RE } from './config.js';
import { generatePassword, hashPassword } from './password.js';

export interface UserSettings {
  profile?: string;
  allowFrom?: string[];
  sendAs?: string[];
  maxSize?: number;
  ratePerMinute?: number;
}

function checkName(name: string): void {
  if (!USER_NAME_RE.test(name)) {
    throw new UsageError(`${JSON.stringify(name)} is not a relay user name`, {
      code: 'bad_value',
      hint: 'use letters, digits, ".", "_", "-" or "@" (at most 64), e.g. printer-2nd-floor',
    });
  }
}

/** Check the settings given on the command line (UsageError naming the flag). */
export function checkSettings(s: UserSettings): void {
  if (s.allowFrom) {
    try {
      parseAllow(s.allowFrom);
    } catch (e) {
      throw new UsageError(`--allow-from: ${(e as Error).message}`, {
        code: 'bad_value',
        hint: 'give IP addresses or CIDRs, comma-separated, e.g. --allow-from 192.168.1.20,10.0.5.0/24',
      });
    }
  }
  for (const a of s.sendAs ?? []) {
    if (!isEmail(a))
      throw new UsageError(`--send-as: ${JSON.stringify(a)} is not an email address`, {
        code: 'bad_address',
        hint: 'give the addresses the device may send as, comma-separated',
      });
  }
}

function apply(u: RelayUser, s: UserSettings): void {
  if (s.profile !== undefined) u.profile = s.profile;
  if (s.allowFrom !== undefined) u.allowFrom = s.allowFrom;
  if (s.sendAs !== undefined) u.sendAs = s.sendAs;
  if (s.maxSize !== undefined) u.maxSize = s.maxSize;
  if (s.ratePerMinute !== undefined) u.ratePerMinute = s.ratePerMinute;
}

export async function addUser(store: RelayStore, name: string, s: UserSettings): Promise<string> {
  checkName(name);
  checkSettings(s);
  const password = generatePassword();
  const hash = await hashPassword(password);
  await store.update((c) => {
    if (findUser(c, name)) {
      throw new UsageError(`relay user ${name} exists already`, {
        code: 'relay_user_exists',
        hint: `give it a new password: oauthmail relay user passwd ${name}; or remove it first`,
      });
    }
    const u: RelayUser = { name, hash, createdAt: new Date().toISOString() };
    apply(u, s);
    c.users.push(u);
  });
  return password;
}

function notFound(name: string): UsageError {
  return new UsageError(`no relay user ${name}`, {
    code: 'relay_user_not_found',
    hint: 'list them: oauthmail relay user list',
  });
}

export async function passwdUser(store: RelayStore, name: string, s: UserSettings = {}): Promise<string> {
  checkSettings(s);
  const password = generatePassword();
  const hash = await hashPassword(password);
  await store.update((c) => {
    const u = findUser(c, name);
    if (!u) throw notFound(name);
    u.hash = hash;
    u.changedAt = new Date().toISOString();
    apply(u, s);
  });
  return password;
}

export async function removeUser(store: RelayStore, name: string): Promise<void> {
  await store.update((c) => {
    const i = c.users.findIndex((u) => u.name.toLowerCase() === name.toLowerCase());
    if (i < 0) throw notFound(name);
    c.users.splice(i, 1);
  });
}

/** The users without their hashes (for `list` and --json). */
export async function listUsers(store: RelayStore): Promise<Array<Omit<RelayUser, 'hash'>>> {
  const c = await store.load();
  return c.users.map(({ hash: _hash, ...rest }) => rest);
}

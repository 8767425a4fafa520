/**
 * keytar, the fallback keychain client: loading the optional module, and every call under a
 * timeout that turns any failure into KeychainUnavailableError (split from keychain.ts).
 */
import { InternalError } from '../errors/index.js';

export const DEFAULT_KEYCHAIN_TIMEOUT_MS = 3000;

/** The part of keytar's API we use. */
export interface KeytarLike {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  deletePassword(service: string, account: string): Promise<boolean>;
  findCredentials(service: string): Promise<Array<{ account: string; password: string }>>;
}

export const KEYCHAIN_UNAVAILABLE_HINT =
  'Use --storage file (secrets go to a 0600 file; set OAUTHMAIL_PASSPHRASE to encrypt it), or start a Secret Service in this session (e.g. gnome-keyring-daemon --unlock --components=secrets).';

/** The keychain cannot be used: no keytar, no Secret Service, a D-Bus error, or no answer in time. */
export class KeychainUnavailableError extends InternalError {
  readonly reason: string;
  constructor(reason: string, cause?: unknown) {
    super(`the keychain is unavailable: ${reason}.`, {
      code: 'keychain_unavailable',
      hint: KEYCHAIN_UNAVAILABLE_HINT,
      cause,
    });
    this.reason = reason;
  }
}

let abandoned = 0;

/**
 * keytar calls that timed out and have not settled yet. Each one keeps the process alive
 * (typically up to the 25 s D-Bus timeout), even through process.exit(). When this is > 0 at the
 * end of a command, the CLI should flush stdout/stderr and end the process with a signal, or
 * accept the wait.
 */
export function pendingKeychainCalls(): number {
  return abandoned;
}

export function keychainTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.OAUTHMAIL_KEYCHAIN_TIMEOUT_MS;
  const n = raw === undefined || raw === '' ? NaN : Number(raw);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : DEFAULT_KEYCHAIN_TIMEOUT_MS;
}

export function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\.$/, '');
}

/**
 * libsecret's words for a locked keyring are obscure ("Cannot create an item in a locked
 * collection", or "Object does not exist at path .../collection/login" when there is no login
 * keyring yet and no prompter can create one, e.g. over SSH). Reads of a locked keyring find
 * nothing rather than fail, so a write is where this shows.
 */
function explain(m: string): string {
  if (/locked collection|collection\/login|prompt.*(dismissed|failed)|cannot open display/i.test(m))
    return `the keyring is locked (or has no login keyring) and cannot be unlocked from here: ${m}`;
  return m;
}

export async function loadKeytar(): Promise<KeytarLike> {
  // a variable specifier: keytar is optional, so the build must not need its types
  const specifier = 'keytar';
  let mod: { default?: KeytarLike } & Partial<KeytarLike>;
  try {
    mod = (await import(specifier)) as typeof mod;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
        ? 'the keytar module is not installed'
        : `the keytar module could not be loaded (${message(e)})`;
    throw new KeychainUnavailableError(why, e);
  }
  const k = (mod.default ?? mod) as KeytarLike;
  if (typeof k.getPassword !== 'function')
    throw new KeychainUnavailableError('the keytar module has no getPassword');
  return k;
}

/** Run one keytar call under a timeout; any failure becomes KeychainUnavailableError. */
export function withTimeout<T>(op: string, ms: number, fn: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abandoned++;
      reject(new KeychainUnavailableError(`the keychain did not answer within ${ms} ms (${op})`));
    }, ms);
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      clearTimeout(timer);
      reject(new KeychainUnavailableError(message(e), e));
      return;
    }
    p.then(
      (v) => {
        clearTimeout(timer);
        if (timedOut) abandoned--;
        else resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        if (timedOut) abandoned--;
        else reject(new KeychainUnavailableError(explain(message(e)), e));
      },
    );
  });
}

export type { SecretKind, SecretStore, StoreKind } from './types.js';
export { SECRET_KINDS } from './types.js';
export {
  KeychainStore,
  KeychainUnavailableError,
  KEYCHAIN_SERVICE,
  KEYCHAIN_UNAVAILABLE_HINT,
  DEFAULT_KEYCHAIN_TIMEOUT_MS,
  keychainTimeoutMs,
  pendingKeychainCalls,
  type KeychainStoreOptions,
  type KeytarLike,
  type ProbeResult,
} from './keychain.js';
export {
  FileSecretStore,
  SecretDecryptError,
  assertSafeName,
  encryptSecret,
  decryptSecret,
  isEncryptedContent,
  SCRYPT_DEFAULTS,
  type FileSecretStoreOptions,
} from './file.js';
export { MemorySecretStore, MemoryBackend } from './memory.js';
export {
  SplitStore,
  chunkUtf8,
  defaultSplitLimit,
  WINDOWS_CREDENTIAL_LIMIT_BYTES,
  type RawBackend,
  type SplitOptions,
} from './split.js';
export {
  withLock,
  LockTimeoutError,
  LOCK_STALE_MS,
  DEFAULT_LOCK_TIMEOUT_MS,
  type LockOptions,
} from './lock.js';
export {
  openSecretStore,
  locateSecret,
  describeUnavailable,
  resetFallbackWarnings,
  FALLBACK_MARKER,
  type StorageMode,
  type OpenSecretStoreOptions,
  type SecretLocation,
} from './open.js';

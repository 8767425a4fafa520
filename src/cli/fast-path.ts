/**
 * The start-up fast path for the two calls that scripts make most: `oauthmail --version` and
 * `oauthmail token [NAME]` while the cached access token is still valid (msmtp's passwordeval,
 * mutt, himalaya call it before every connection). It loads neither commander nor the command
 * tree nor MSAL: only the config reader, the secret store and the MSAL cache reader.
 *
 * It answers only when it is sure; anything else (other flags, no cache hit, a config problem,
 * a provider without a cache reader) returns undefined and the full CLI runs as if the fast path
 * did not exist, so errors, refreshes and messages stay in one place.
 */
import { readFileSync } from 'node:fs';
import { VERSION } from '../util/version.js';
import type { InStream, OutStream } from './io.js';

export interface FastDeps {
  stdin: InStream;
  stdout: OutStream;
  stderr: OutStream;
  env: NodeJS.ProcessEnv;
}

/** `token [NAME]` with at most -p/--profile NAME: the profile name (or '' for the default). */
function parseTokenArgv(argv: readonly string[]): string | undefined {
  let name: string | undefined;
  let sawToken = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === 'token' && !sawToken) sawToken = true;
    else if ((a === '-p' || a === '--profile') && i + 1 < argv.length && name === undefined) name = argv[++i];
    else if (a.startsWith('--profile=') && name === undefined) name = a.slice('--profile='.length);
    else if (sawToken && !a.startsWith('-') && name === undefined) name = a;
    else return undefined;
  }
  return sawToken ? (name ?? '') : undefined;
}

export async function fastPath(argv: readonly string[], deps: FastDeps): Promise<number | undefined> {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    deps.stdout.write(VERSION + '\n');
    return 0;
  }
  const name = parseTokenArgv(argv);
  if (name === undefined) return undefined;
  try {
    const { resolvePaths } = await import('../config/paths.js');
    const { parseConfigText, resolveProfileName } = await import('../config/store.js');
    const paths = resolvePaths(deps.env);
    const config = parseConfigText(readFileSync(paths.configFile, 'utf8'), paths.configFile);
    const { name: profileName, profile } = resolveProfileName(config, name || undefined, deps.env);
    if (profile.provider !== 'microsoft') return undefined;
    const { Io } = await import('./io.js');
    const io = new Io({ ...deps });
    const { openSecretStore } = await import('../secrets/open.js');
    const store = await openSecretStore({
      storage: profile.storage,
      paths,
      env: deps.env,
      warn: (m) => io.warn(m),
      namespace: config.id,
    });
    // a config without its ID yet, or a keychain item still under its older name: the full CLI
    // makes the ID and moves the item
    if (store.kind === 'keychain' && !config.id) return undefined;
    const { providerFor } = await import('../auth/index.js');
    const provider = await providerFor(profileName, profile, {
      io,
      env: deps.env,
      store,
      // a cache peek takes no lock; anything that would need one goes to the full CLI
      lock: (_n, fn) => fn(),
    });
    const hit = await provider.peekCachedToken();
    if (!hit) return undefined;
    deps.stdout.write(hit.accessToken + '\n');
    return 0;
  } catch {
    // the full CLI reports whatever went wrong, with its message and exit code
    return undefined;
  }
}

import os from 'node:os';
import path from 'node:path';

/**
 * Where oauthmail keeps its files (XDG Base Directory spec).
 *   config: $OAUTHMAIL_CONFIG_DIR, else $XDG_CONFIG_HOME/oauthmail, else ~/.config/oauthmail
 *   data:   $OAUTHMAIL_DATA_DIR,   else $XDG_DATA_HOME/oauthmail,   else ~/.local/share/oauthmail
 *           (file-store secrets, token health records)
 *   state:  locks live under data/locks
 */
export interface Paths {
  configDir: string;
  configFile: string;
  dataDir: string;
  secretsDir: string;
  locksDir: string;
}

export function resolvePaths(env: NodeJS.ProcessEnv = process.env): Paths {
  const home = env.HOME || os.homedir();
  const configDir =
    env.OAUTHMAIL_CONFIG_DIR || path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'oauthmail');
  const dataDir =
    env.OAUTHMAIL_DATA_DIR || path.join(env.XDG_DATA_HOME || path.join(home, '.local', 'share'), 'oauthmail');
  return {
    configDir,
    configFile: path.join(configDir, 'config.json'),
    dataDir,
    secretsDir: path.join(dataDir, 'secrets'),
    locksDir: path.join(dataDir, 'locks'),
  };
}

/**
 * Opening the system browser for the sign-in page. The URL is always printed on stderr too, so
 * that a browser on another screen (or a person reading an SSH session) can be used instead.
 * The URL carries no secret: state, nonce and the PKCE challenge (RFC 7636 §4.2; the verifier
 * never leaves this process).
 */
import { spawn } from 'node:child_process';

/** Is there a display a browser could open on? */
export function hasDisplay(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): boolean {
  if (env.BROWSER) return true;
  if (platform === 'darwin' || platform === 'win32') return !(env.SSH_CONNECTION && !env.DISPLAY);
  return !!(env.DISPLAY || env.WAYLAND_DISPLAY);
}

/** Start the system browser on `url`; resolves false if no opener could be started. */
export function openBrowser(
  url: string,
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform = process.platform,
): Promise<boolean> {
  let cmd: string;
  let args: string[];
  if (env.BROWSER) {
    cmd = env.BROWSER;
    args = [url];
  } else if (platform === 'darwin') {
    cmd = 'open';
    args = [url];
  } else if (platform === 'win32') {
    // not `start`: cmd.exe would parse & in the URL
    cmd = 'rundll32';
    args = ['url.dll,FileProtocolHandler', url];
  } else {
    cmd = 'xdg-open';
    args = [url];
  }
  return new Promise((resolve) => {
    try {
      const child = spawn(cmd, args, { stdio: 'ignore', detached: true, env });
      child.once('error', () => resolve(false));
      child.once('spawn', () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}

/**
 * Show the sign-in URL on stderr, opening the system browser first when asked; then say how long
 * we wait. Used by the sign-in UI (index.ts) for every provider.
 */
export async function presentSignInUrl(
  io: { err(text: string): void },
  url: string,
  o: { openBrowser: boolean; timeoutMs: number; env: NodeJS.ProcessEnv },
): Promise<void> {
  const opened = o.openBrowser ? await openBrowser(url, o.env) : false;
  io.err(
    opened
      ? 'Opened the sign-in page in your browser. If it did not open, go to:'
      : 'Open this URL in a browser on this computer to sign in:',
  );
  io.err(url);
  io.err(`Waiting for the sign-in (up to ${waitText(o.timeoutMs)})...`);
}

/** "45 s", "90 s", "5 min": seconds under two minutes, so that `--timeout 15` does not read "1 min". */
export function waitText(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

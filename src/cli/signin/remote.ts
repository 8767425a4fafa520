/**
 * Remote sessions (SSH without a display): the loopback redirect of the browser sign-in lands on
 * the computer with the browser, not on this machine. Two ways out, printed by `login`:
 * forward the loopback port with `ssh -L` (RFC 8252 loopback redirect, fixed port), or use
 * `--paste`, or a device code where the provider allows it.
 */
import type { Profile } from '../../config/schema.js';

export function isRemoteSession(env: NodeJS.ProcessEnv): boolean {
  return !!(env.SSH_CONNECTION || env.SSH_TTY) && !env.DISPLAY && !env.WAYLAND_DISPLAY;
}

/** The lines printed on stderr before a browser sign-in in a remote session. */
export function sshGuidance(name: string, profile: Profile, env: NodeJS.ProcessEnv): string[] {
  let port = profile.redirectPort;
  if (!port && profile.redirectUri) {
    const p = Number(new URL(profile.redirectUri).port);
    if (p) port = p;
  }
  const server = (env.SSH_CONNECTION ?? '').split(' ')[2] ?? 'THIS_HOST';
  const lines = [
    'This looks like an SSH session without a display: the browser on your own computer cannot reach',
    "this machine's sign-in listener unless you forward its port. Either:",
  ];
  if (port) {
    lines.push(
      `  - forward the port, then open the URL below on your computer:  ssh -L ${port}:localhost:${port} ${server}`,
    );
  } else {
    lines.push(
      `  - give the profile a fixed port (oauthmail profile edit ${name} --set redirectPort=53682),`,
      `    reconnect with  ssh -L 53682:localhost:53682 ${server}  and run oauthmail login ${name} --no-browser`,
    );
  }
  lines.push(`  - or paste the final address back: oauthmail login ${name} --paste`);
  if (profile.provider === 'microsoft' && profile.clientType === 'public') {
    lines.push(`  - or use a device code: oauthmail login ${name} --device`);
  }
  return lines;
}

/**
 * Showing a device code (RFC 8628 §3.3) on stderr. The verification URL and the user code are
 * not secrets on their own (the device_code is, and the auth code keeps it), but they let whoever
 * sees them complete a sign-in within minutes, so they go to stderr only, never to stdout or logs.
 * On a terminal the address is also drawn as a QR code (./qr.ts), for a phone.
 */
import type { DeviceCodeInfo } from '../../auth/index.js';
import { qrLines } from './qr.js';

export function showDeviceCode(
  io: { err(text: string): void; stderrIsTTY: boolean; color: boolean },
  d: DeviceCodeInfo,
  profile: string,
): void {
  const minutes = Math.max(1, Math.round(d.expiresIn / 60));
  if (io.stderrIsTTY) {
    for (const l of qrLines(d.verificationUri, { color: io.color })) io.err(l);
  }
  io.err(
    `To sign in to profile ${profile}, open ${d.verificationUri} in a browser (on any device, or scan the code)`,
  );
  io.err(`and enter the code: ${d.userCode}`);
  io.err(
    `The code is valid for about ${minutes} minute${minutes === 1 ? '' : 's'}. Waiting for the sign-in...`,
  );
}

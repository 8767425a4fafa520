/**
 * Showing a device code (RFC 8628 §3.3) on stderr. The verification URL and the user code are
 * not secrets on their own (the device_code is, and the auth code keeps it), but they let whoever
 * sees them complete a sign-in within minutes, so they go to stderr only, never to stdout or logs.
 *
 * No QR code: a correct QR encoder (Reed-Solomon, masking, version selection) is several
 * hundred lines, and the dependencies that do it are not tiny. The URL is short enough to type.
 */
import type { DeviceCodeInfo } from '../../auth/index.js';

export function showDeviceCode(io: { err(text: string): void }, d: DeviceCodeInfo, profile: string): void {
  const minutes = Math.max(1, Math.round(d.expiresIn / 60));
  io.err(`To sign in to profile ${profile}, open ${d.verificationUri} in a browser (on any device)`);
  io.err(`and enter the code: ${d.userCode}`);
  io.err(
    `The code is valid for about ${minutes} minute${minutes === 1 ? '' : 's'}. Waiting for the sign-in...`,
  );
}

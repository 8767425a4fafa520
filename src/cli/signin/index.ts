/**
 * The terminal side of a sign-in (auth's SignInUi, src/auth/grant.ts): everything a person reads
 * goes to stderr (redacted by the Io); stdin is read only for `login --paste`.
 */
import type { Readable } from 'node:stream';
import type { DeviceCodeInfo, SignInUi } from '../../auth/index.js';
import { presentSignInUrl } from './browser.js';
import { showDeviceCode } from './device-code.js';
import { readPastedRedirect } from './paste.js';

export interface SignInTerminal {
  readonly stdin: Readable;
  err(text: string): void;
  /** stderr is a terminal a person watches (the device code's QR code is drawn then) */
  readonly stderrIsTTY: boolean;
  readonly color: boolean;
}

export class TerminalSignIn implements SignInUi {
  constructor(
    private readonly io: SignInTerminal,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  showSignInUrl(url: string, o: { openBrowser: boolean; timeoutMs: number }): Promise<void> {
    return presentSignInUrl(this.io, url, { ...o, env: this.env });
  }

  readPastedRedirect(
    url: string,
    o: { redirectUri: string; timeoutMs: number },
  ): Promise<string | undefined> {
    return readPastedRedirect(this.io, url, o);
  }

  showDeviceCode(d: DeviceCodeInfo, profile: string): void {
    showDeviceCode(this.io, d, profile);
  }

  slowDown(seconds: number): void {
    this.io.err(`The identity provider asked oauthmail to poll more slowly: every ${seconds} s now.`);
  }

  selfSignedCertificate(c: {
    redirectUri: string;
    fingerprint: string;
    dir: string;
    created: boolean;
  }): void {
    const io = this.io;
    io.err(
      `The sign-in ends at ${c.redirectUri}, served with oauthmail's own certificate made on this computer.`,
    );
    io.err(
      `Your browser warns that it does not trust it${c.created ? '' : ' (unless you accepted it before)'}: check that the SHA-256 fingerprint is`,
    );
    io.err(`  ${c.fingerprint}`);
    io.err(
      `then choose Advanced → Proceed to localhost. Or trust ${c.dir}/cert.pem in the browser once to skip the warning.`,
    );
  }

  warn(text: string): void {
    this.io.err(text);
  }
}

/**
 * Issue 18: a device-code sign-in on a terminal also draws the verification address as a QR code
 * (src/cli/signin/qr.ts), which a decoder (jsQR, what a phone's camera does) reads back as that
 * address; without a terminal (cron, pipes) there is no QR code.
 */
import { describe, expect, it } from 'vitest';
import jsQRModule from 'jsqr';

// jsqr is CommonJS: under Node's ESM the function is the module itself, its types say `default`
const jsQR = ((jsQRModule as unknown as { default?: typeof jsQRModule }).default ??
  jsQRModule) as unknown as (
  data: Uint8ClampedArray,
  width: number,
  height: number,
) => { data: string } | null;
import { Io } from '../../src/cli/io.js';
import { TerminalSignIn } from '../../src/cli/signin/index.js';

const URL_ = 'https://microsoft.com/devicelogin';
const ESC = String.fromCharCode(27);

/** The drawn lines back to pixels (light = drawn half blocks), 4 px per module, then decoded. */
function decode(lines: string[]): string | undefined {
  const rows: boolean[][] = [];
  for (const line of lines) {
    const chars = [...line.replaceAll(`${ESC}[97;40m`, '').replaceAll(`${ESC}[0m`, '')];
    rows.push(chars.map((ch) => ch === '█' || ch === '▀'));
    rows.push(chars.map((ch) => ch === '█' || ch === '▄'));
  }
  const scale = 4;
  const w = rows[0]!.length * scale;
  const h = rows.length * scale;
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = rows[Math.floor(y / scale)]![Math.floor(x / scale)] ? 255 : 0;
      data.set([v, v, v, 255], (y * w + x) * 4);
    }
  return jsQR(data, w, h)?.data;
}

function signIn(o: { tty: boolean; env?: NodeJS.ProcessEnv }) {
  const t = Io.Test({ tty: o.tty, env: o.env ?? { NO_COLOR: '1' } });
  new TerminalSignIn(t.io, t.io.env).showDeviceCode(
    { userCode: 'ABCD-EFGH', verificationUri: URL_, expiresIn: 900 },
    'work',
  );
  return t.err().split('\n');
}

describe('the device code on a terminal', () => {
  it('is drawn as a QR code that decodes to the verification address, above the address and code', () => {
    const lines = signIn({ tty: true });
    const qr = lines.filter((l) => /[█▀▄]/.test(l));
    expect(qr.length).toBeGreaterThan(10);
    expect(decode(qr)).toBe(URL_);
    expect(lines.join('\n')).toContain(`open ${URL_} in a browser`);
    expect(lines.join('\n')).toContain('enter the code: ABCD-EFGH');
  });

  it('with colour: black on white whatever the terminal theme, and still decodes', () => {
    const lines = signIn({ tty: true, env: { TERM: 'xterm-256color' } });
    const qr = lines.filter((l) => /[█▀▄]/.test(l));
    expect(qr[0]!.startsWith(`${ESC}[97;40m`)).toBe(true);
    expect(decode(qr)).toBe(URL_);
  });

  it('not on a terminal (cron, a pipe): no QR code, the address and code only', () => {
    const lines = signIn({ tty: false });
    expect(lines.some((l) => /[█▀▄]/.test(l))).toBe(false);
    expect(lines.join('\n')).toContain('enter the code: ABCD-EFGH');
  });
});

/**
 * A QR code of the device-code sign-in address, for a phone (issue 18), drawn with half blocks:
 * each text line is two rows of modules. Light modules are drawn (the terminal's text colour) and
 * dark ones left blank, which reads correctly on the usual light-on-dark terminal; with colour the
 * code is drawn black on white whatever the theme. Encoding (Reed-Solomon, masks, version) is
 * qrcode-generator's.
 */
import { createRequire } from 'node:module';
import type qrcodeFactory from 'qrcode-generator';

// loaded on first use (a sync require: the device-code callback is synchronous), not at start-up
let factory: typeof qrcodeFactory | undefined;
const qrcode = (...a: Parameters<typeof qrcodeFactory>) =>
  (factory ??= createRequire(import.meta.url)('qrcode-generator') as typeof qrcodeFactory)(...a);

/** The modules of `text`'s QR code, with a quiet zone of `margin` modules: true = dark. */
export function qrModules(text: string, margin = 2): boolean[][] {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const size = n + 2 * margin;
  return Array.from({ length: size }, (_, r) =>
    Array.from({ length: size }, (_, c) => {
      const y = r - margin;
      const x = c - margin;
      return y >= 0 && y < n && x >= 0 && x < n && qr.isDark(y, x);
    }),
  );
}

/** The code as lines of text. */
export function qrLines(text: string, o: { color?: boolean } = {}): string[] {
  const m = qrModules(text);
  const light = (r: number, c: number) => !(m[r]?.[c] ?? false);
  const lines: string[] = [];
  for (let r = 0; r < m.length; r += 2) {
    let line = '';
    for (let c = 0; c < m.length; c++) {
      const top = light(r, c);
      const bottom = r + 1 < m.length ? light(r + 1, c) : true;
      line += top && bottom ? '█' : top ? '▀' : bottom ? '▄' : ' ';
    }
    // colour: white text on a black background, so that the drawn (light) parts are white
    lines.push(o.color ? `\x1b[97;40m${line}\x1b[0m` : line);
  }
  return lines;
}

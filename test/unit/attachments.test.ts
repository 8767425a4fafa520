import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { findAttachments, sanitizeFilename, saveUnique, withSuffix } from '../../src/mail/attachments.js';

describe('sanitizeFilename', () => {
  it('keeps only the last path component', () => {
    expect(sanitizeFilename('../../etc/passwd')).toBe('passwd');
    expect(sanitizeFilename('..\\..\\Windows\\win.ini')).toBe('win.ini');
    expect(sanitizeFilename('/abs/path/report.pdf')).toBe('report.pdf');
  });
  it('never returns an empty, dot-only or hidden name', () => {
    expect(sanitizeFilename('')).toBe('attachment');
    expect(sanitizeFilename(undefined, 'msg-1-part-2.bin')).toBe('msg-1-part-2.bin');
    expect(sanitizeFilename('..')).toBe('attachment');
    expect(sanitizeFilename('.')).toBe('attachment');
    expect(sanitizeFilename('   ')).toBe('attachment');
    expect(sanitizeFilename('.bashrc')).toBe('bashrc');
    expect(sanitizeFilename('../')).toBe('attachment');
  });
  it('prefixes Windows device names, with or without an extension, in any case', () => {
    for (const n of ['CON', 'con', 'NUL', 'PRN', 'AUX', 'COM1', 'lpt9', 'CON.txt', 'nul.tar.gz', 'COM¹']) {
      expect(sanitizeFilename(n)).toBe(`_${n}`);
    }
    expect(sanitizeFilename('CONTRACT.pdf')).toBe('CONTRACT.pdf');
  });
  it('removes control and bidi characters and replaces characters Windows forbids', () => {
    expect(sanitizeFilename('a\u0000b\u001fc.txt')).toBe('abc.txt');
    expect(sanitizeFilename('invoice\u202Efdp.exe')).toBe('invoicefdp.exe');
    expect(sanitizeFilename('a<b>c:d"e|f?g*h.txt')).toBe('a_b_c_d_e_f_g_h.txt');
    expect(sanitizeFilename('trailing dots... ')).toBe('trailing dots');
  });
  it('limits the length to 200 bytes of UTF-8 and keeps the extension', () => {
    const long = 'x'.repeat(300) + '.pdf';
    const s = sanitizeFilename(long);
    expect(Buffer.byteLength(s)).toBeLessThanOrEqual(200);
    expect(s.endsWith('.pdf')).toBe(true);
    const wide = 'é'.repeat(300);
    expect(Buffer.byteLength(sanitizeFilename(wide))).toBeLessThanOrEqual(200);
    expect(sanitizeFilename(wide)).toMatch(/^é+$/);
  });
  it('suffixes stay within the limit and before the extension', () => {
    expect(withSuffix('a.pdf', 2)).toBe('a (2).pdf');
    const s = withSuffix(sanitizeFilename('y'.repeat(300) + '.txt'), 12);
    expect(Buffer.byteLength(s)).toBeLessThanOrEqual(200);
    expect(s.endsWith(' (12).txt')).toBe(true);
  });
});

describe('saveUnique', () => {
  it('never overwrites: a taken name gets a suffix; nothing leaves DIR', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-att-'));
    const dir = path.join(root, 'att');
    const a = await saveUnique(dir, '../../etc/passwd', Buffer.from('one'));
    const b = await saveUnique(dir, 'passwd', Readable.from([Buffer.from('two')]));
    const c = await saveUnique(dir, 'CON', Buffer.from('three'));
    const d = await saveUnique(dir, '', Buffer.from('four'));
    expect(path.basename(a)).toBe('passwd');
    expect(path.basename(b)).toBe('passwd (1)');
    expect(path.basename(c)).toBe('_CON');
    expect(path.basename(d)).toBe('attachment');
    for (const f of [a, b, c, d]) expect(path.dirname(f)).toBe(dir);
    expect(readFileSync(a, 'utf8')).toBe('one');
    expect(readFileSync(b, 'utf8')).toBe('two');
    expect(readdirSync(dir).sort()).toEqual(['_CON', 'attachment', 'passwd', 'passwd (1)']);
    expect(readdirSync(root)).toEqual(['att']);
  });
});

describe('findAttachments', () => {
  it('finds attachment parts and named non-text parts, not the text body', () => {
    const parts = findAttachments({
      type: 'multipart/mixed',
      childNodes: [
        { part: '1', type: 'text/plain' },
        {
          part: '2',
          type: 'application/octet-stream',
          disposition: 'attachment',
          dispositionParameters: { filename: '../../etc/passwd' },
        },
        { part: '3', type: 'application/pdf', disposition: 'attachment' },
        { part: '4', type: 'image/png', parameters: { name: 'logo.png' } },
      ],
    });
    expect(parts.map((p) => [p.part, p.filename])).toEqual([
      ['2', '../../etc/passwd'],
      ['3', undefined],
      ['4', 'logo.png'],
    ]);
  });
});

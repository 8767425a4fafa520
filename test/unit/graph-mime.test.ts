/**
 * What the Graph transport changes in a MIME message (src/mail/graph/mime.ts): only the Bcc field,
 * from the envelope; and for messages over Graph's 4 MB limit, which attachments are cut out.
 */
import { describe, expect, it } from 'vitest';
import { cutAttachments, withEnvelopeBcc } from '../../src/mail/graph/mime.js';
import { UsageError } from '../../src/errors/index.js';

const msg = (head: string[], body = 'hello\r\n') => Buffer.from([...head, '', body].join('\r\n'), 'latin1');

describe('withEnvelopeBcc', () => {
  it('adds envelope recipients not in To/Cc as one Bcc field; the rest stays byte for byte', () => {
    const raw = msg(
      ['From: a@x.test', 'To: "B" <b@x.test>', 'Cc: c@x.test', 'Subject: =?UTF-8?B?w7w=?='],
      'ü\xff\r\n',
    );
    const out = withEnvelopeBcc(raw, ['b@x.test', 'C@x.test', 'd@x.test', 'e@x.test']);
    expect(out.toString('latin1')).toBe(
      msg(
        [
          'From: a@x.test',
          'To: "B" <b@x.test>',
          'Cc: c@x.test',
          'Subject: =?UTF-8?B?w7w=?=',
          'Bcc: d@x.test,\r\n e@x.test',
        ],
        'ü\xff\r\n',
      ).toString('latin1'),
    );
  });

  it('leaves the message alone when every recipient is visible; replaces a Bcc field already there', () => {
    const raw = msg(['To: b@x.test', 'Subject: s']);
    expect(withEnvelopeBcc(raw, ['b@x.test']).equals(raw)).toBe(true);
    const folded = msg(['To: b@x.test', 'Bcc: old@x.test,\r\n older@x.test', 'Subject: s']);
    expect(withEnvelopeBcc(folded, ['b@x.test', 'new@x.test']).toString('latin1')).toBe(
      msg(['To: b@x.test', 'Subject: s', 'Bcc: new@x.test']).toString('latin1'),
    );
  });

  it('keeps LF-only messages LF-only', () => {
    const raw = Buffer.from('To: b@x.test\nSubject: s\n\nbody\n');
    expect(withEnvelopeBcc(raw, ['b@x.test', 'z@x.test']).toString()).toBe(
      'To: b@x.test\nSubject: s\nBcc: z@x.test\n\nbody\n',
    );
  });

  it('refuses an envelope that leaves out a To/Cc address (Graph would send to it anyway)', () => {
    const raw = msg(['To: b@x.test, list@x.test', 'Subject: s']);
    expect(() => withEnvelopeBcc(raw, ['b@x.test'])).toThrow(UsageError);
    expect(() => withEnvelopeBcc(raw, ['b@x.test'])).toThrow(/list@x\.test is not among the recipients/);
  });
});

describe('cutAttachments', () => {
  const big = Buffer.alloc(300_000, 7);
  const small = Buffer.from('tiny');
  const b = 'BOUNDARY';
  const part = (name: string, data: Buffer, disp = 'attachment') =>
    [
      `--${b}`,
      `Content-Type: application/octet-stream; name="${name}"`,
      `Content-Disposition: ${disp}; filename="${name}"`,
      'Content-Transfer-Encoding: base64',
      '',
      data.toString('base64').replace(/.{76}/g, '$&\r\n'),
    ].join('\r\n');
  const raw = Buffer.from(
    [
      'From: a@x.test',
      'To: b@x.test',
      `Content-Type: multipart/mixed; boundary="${b}"`,
      '',
      'preamble',
      `--${b}`,
      'Content-Type: text/plain',
      '',
      'the text',
      part('big.bin', big),
      part('small.txt', small),
      `--${b}--`,
      '',
    ].join('\r\n'),
  );

  it('cuts the largest attachments until the rest fits, and keeps the rest a valid multipart', () => {
    const cut = cutAttachments(raw, 10_000)!;
    expect(cut.attachments.map((a) => a.name)).toEqual(['big.bin']);
    expect(cut.attachments[0]!.bytes.equals(big)).toBe(true);
    expect(cut.attachments[0]!.contentType).toBe('application/octet-stream');
    const rest = cut.rest.toString('latin1');
    expect(rest).toContain('the text');
    expect(rest).toContain('filename="small.txt"');
    expect(rest).not.toContain('big.bin');
    expect(rest.endsWith(`--${b}--\r\n`)).toBe(true);
    expect(rest.length).toBeLessThan(10_000);
  });

  it('cuts nothing when the message fits; undefined for a message without multipart/mixed', () => {
    expect(cutAttachments(raw, raw.length)!.attachments).toEqual([]);
    expect(cutAttachments(msg(['To: b@x.test']), 1)).toBeUndefined();
  });
});

import { describe, it, expect } from 'vitest';
import { EX, parseSendmailArgs, prepareSendmail, toSendmailError } from '../../src/mail/sendmail.js';
import {
  AuthError,
  ConfigError,
  MailServerError,
  TransientError,
  UsageError,
} from '../../src/errors/index.js';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { exitCode: number }).exitCode;
  }
  return 0;
};

describe('parseSendmailArgs', () => {
  it('getopt style: -t -i, combined -ti, attached and separate values, -- ends options', () => {
    expect(parseSendmailArgs(['-t', '-i'])).toMatchObject({
      extractRecipients: true,
      ignoreDots: true,
      recipients: [],
    });
    expect(parseSendmailArgs(['-ti', '-fme@x.test', 'a@x.test'])).toMatchObject({
      extractRecipients: true,
      ignoreDots: true,
      from: 'me@x.test',
      recipients: ['a@x.test'],
    });
    expect(parseSendmailArgs(['-f', 'me@x.test', '-F', 'Cron Daemon', 'a@x.test', 'b@x.test'])).toMatchObject(
      { from: 'me@x.test', fullName: 'Cron Daemon', recipients: ['a@x.test', 'b@x.test'] },
    );
    expect(parseSendmailArgs(['-r', 'me@x.test', '--', '-odd@x.test'])).toMatchObject({
      from: 'me@x.test',
      recipients: ['-odd@x.test'],
    });
    expect(parseSendmailArgs(['a@x.test, b@x.test'])).toMatchObject({ recipients: ['a@x.test', 'b@x.test'] });
  });

  it('accepts and ignores the options callers pass (-oi, -oem, -odb, -B 8BITMIME, -N, -v, -bm)', () => {
    const a = parseSendmailArgs([
      '-oi',
      '-oem',
      '-odb',
      '-B',
      '8BITMIME',
      '-N',
      'never',
      '-v',
      '-bm',
      'a@x.test',
    ]);
    expect(a).toMatchObject({ ignoreDots: true, verbose: true, recipients: ['a@x.test'] });
  });

  it('unknown options, missing values and other modes are EX_USAGE (64)', () => {
    expect(code(() => parseSendmailArgs(['-Q']))).toBe(EX.USAGE);
    expect(code(() => parseSendmailArgs(['-f']))).toBe(EX.USAGE);
    expect(code(() => parseSendmailArgs(['-bp']))).toBe(EX.USAGE);
  });
});

describe('prepareSendmail', () => {
  const d = { user: 'me@x.test' };
  it('-t takes To/Cc/Bcc (folded too), strips Bcc, adds From/Date/Message-ID', () => {
    const p = prepareSendmail(
      parseSendmailArgs(['-t', '-i']),
      'To: a@x.test,\n b@x.test\nCc: C <c@x.test>\nBcc: hidden@x.test\nSubject: s\n\nbody\n',
      d,
    );
    expect(p.envelope).toEqual({
      from: 'me@x.test',
      to: ['a@x.test', 'b@x.test', 'c@x.test', 'hidden@x.test'],
    });
    expect(p.raw).not.toMatch(/hidden@x\.test/);
    expect(p.raw).toMatch(/^From: me@x\.test\r\n/m);
    expect(p.raw).toMatch(/^Date: /m);
    expect(p.raw).toMatch(/^Message-ID: </m);
    expect(p.raw).toMatch(/\r\n\r\nbody\r\n$/);
  });

  it('recipients on the command line are added to -t ones (as Postfix does), deduplicated', () => {
    const p = prepareSendmail(parseSendmailArgs(['-t', 'A@x.test', 'z@x.test']), 'To: a@x.test\n\nx', d);
    expect(p.envelope.to).toEqual(['A@x.test', 'z@x.test']);
  });

  it('without -i a lone dot ends the message; with -i it does not', () => {
    expect(
      prepareSendmail(parseSendmailArgs(['a@x.test']), 'Subject: s\n\n1\n.\nafter\n', d).raw,
    ).not.toMatch(/after/);
    expect(prepareSendmail(parseSendmailArgs(['-i', 'a@x.test']), 'Subject: s\n\n1\n.\n2\n', d).raw).toMatch(
      /1\r\n\.\r\n2/,
    );
  });

  it('-f sets the envelope sender and -F the name of an added From', () => {
    const p = prepareSendmail(
      parseSendmailArgs(['-f', 'other@x.test', '-F', 'Nightly', 'a@x.test']),
      'Subject: s\n\nx',
      d,
    );
    expect(p.envelope.from).toBe('other@x.test');
    expect(p.raw).toMatch(/^From: "Nightly" <other@x\.test>/m);
  });

  it('a From that is not an address (cron: "root (Cron Daemon)") becomes the profile sender with that name', () => {
    const p = prepareSendmail(parseSendmailArgs(['-t']), 'From: root (Cron Daemon)\nTo: a@x.test\n\nx', d);
    expect(p.raw).toMatch(/^From: "Cron Daemon" <me@x\.test>/m);
    expect(p.raw.match(/^From:/gm)).toHaveLength(1);
  });

  it('no recipients is 64, a bad recipient address 65', () => {
    expect(code(() => prepareSendmail(parseSendmailArgs(['-t']), 'Subject: s\n\nx', d))).toBe(EX.USAGE);
    expect(code(() => prepareSendmail(parseSendmailArgs(['-t']), 'To: not-an-address\n\nx', d))).toBe(
      EX.DATAERR,
    );
    expect(
      prepareSendmail(parseSendmailArgs(['-t', 'a@x.test']), 'To: undisclosed-recipients:;\n\nx', d).envelope
        .to,
    ).toEqual(['a@x.test']);
  });
});

describe('toSendmailError', () => {
  it('maps our errors to sysexits.h', () => {
    expect(toSendmailError(new TransientError('t', { code: 'smtp_temporary' })).exitCode).toBe(EX.TEMPFAIL);
    expect(toSendmailError(new ConfigError('c', { code: 'no_profile' })).exitCode).toBe(EX.CONFIG);
    expect(toSendmailError(new AuthError('a', { code: 'not_signed_in' })).exitCode).toBe(EX.NOPERM);
    expect(toSendmailError(new UsageError('u', { code: 'bad_usage' })).exitCode).toBe(EX.USAGE);
    expect(toSendmailError(new MailServerError('x', { code: 'smtp_auth_refused' })).exitCode).toBe(EX.NOPERM);
    expect(
      toSendmailError(
        new MailServerError('x', {
          code: 'smtp_refused',
          cause: { response: '550 5.1.1 <n@x>: Recipient address rejected' },
        }),
      ).exitCode,
    ).toBe(EX.NOUSER);
    expect(
      toSendmailError(new MailServerError('x', { code: 'smtp_refused', cause: { response: '554 5.7.1 no' } }))
        .exitCode,
    ).toBe(EX.UNAVAILABLE);
    expect(toSendmailError(new Error('boom')).exitCode).toBe(70);
  });
});

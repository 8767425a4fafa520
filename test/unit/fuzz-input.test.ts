/**
 * Property tests over user input (issue 8): profile names, addresses, header values, config files
 * (truncated, wrong types, huge) and attachment names from messages. Every case is either
 * correct behaviour or a clean OauthmailError: exit 2 or 3, one line, a stable code.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { PROFILE_NAME_RE, isEmail, validateProfileName } from '../../src/config/schema.js';
import { parseConfigText, resolveProfileName } from '../../src/config/store.js';
import { parseAddressList, parseHeaders } from '../../src/mail/message.js';
import { MAX_NAME_BYTES, sanitizeFilename } from '../../src/mail/attachments.js';
import { OauthmailError } from '../../src/errors/index.js';
import { fuzzParams } from '../support/fuzz.js';

const RUNS = fuzzParams(500);

/** Runs fn; returns its value, or checks that what it threw is a clean error with this exit code. */
function cleanly<T>(fn: () => T, exitCodes: number[]): T | undefined {
  try {
    return fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OauthmailError);
    const err = e as OauthmailError;
    expect(exitCodes).toContain(err.exitCode);
    expect(err.message).not.toMatch(/[\r\n]/);
    expect(err.code).toMatch(/^[a-z0-9_]+$/);
    if (err.hint !== undefined) expect(err.hint).not.toMatch(/[\r\n]/);
    return undefined;
  }
}

/** Strings with the characters that break parsers: controls, CR/LF, quotes, brackets, unicode. */
const nasty = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc
    .array(
      fc.constantFrom(
        'a',
        'b',
        '@',
        '.',
        '<',
        '>',
        '"',
        ',',
        ';',
        ':',
        '\r',
        '\n',
        '\t',
        ' ',
        '\0',
        '\\',
        '/',
        '(',
        ')',
        'é',
        '😀',
        '\u202e',
      ),
      { maxLength: 60 },
    )
    .map((a) => a.join('')),
);

describe('profile names', () => {
  it('validateProfileName never throws, and accepts only safe names', () => {
    fc.assert(
      fc.property(nasty, (name) => {
        const why = validateProfileName(name);
        if (why === undefined) {
          expect(name).toMatch(PROFILE_NAME_RE);
          expect(name).not.toMatch(/[/\\\0\s]/);
          expect(name.startsWith('.')).toBe(false);
        } else {
          expect(why).toMatch(/^invalid profile name /);
          expect(why).not.toMatch(/[\r\n](?!")/);
        }
      }),
      RUNS,
    );
  });
});

describe('addresses', () => {
  it('parseAddressList gives plain addresses or a one-line usage error (exit 2)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          nasty,
          fc.emailAddress(),
          fc.tuple(nasty, fc.emailAddress()).map(([n, a]) => `${n} <${a}>`),
        ),
        (v) => {
          const list = cleanly(() => parseAddressList('--to', v), [2]);
          if (list) {
            expect(list.length).toBeGreaterThan(0);
            for (const a of list) {
              expect(isEmail(a.address)).toBe(true);
              expect(a.address + a.name).not.toMatch(/[\r\n]/);
            }
          }
        },
      ),
      RUNS,
    );
  });

  it('well-formed addresses are accepted as they are', () => {
    fc.assert(
      fc.property(fc.emailAddress(), (a) => {
        fc.pre(isEmail(a));
        expect(parseAddressList('--to', a)).toEqual([{ name: '', address: a }]);
      }),
      RUNS,
    );
  });
});

describe('header values', () => {
  it('parseHeaders gives a key and a value without line breaks, or a one-line usage error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          nasty,
          fc
            .tuple(fc.constantFrom('X-Ticket', 'Subject', 'Bcc', 'X', 'A B'), nasty)
            .map(([k, v]) => `${k}: ${v}`),
        ),
        (h) => {
          const out = cleanly(() => parseHeaders([h]), [2]);
          if (out) {
            expect(out).toHaveLength(1);
            expect(out[0]!.key).toMatch(/^[!-9;-~]+$/);
            expect(out[0]!.value).not.toMatch(/[\r\n]/);
            expect(['subject', 'bcc', 'from', 'to', 'cc']).not.toContain(out[0]!.key.toLowerCase());
          }
        },
      ),
      RUNS,
    );
  });
});

describe('config files', () => {
  const good = JSON.stringify(
    {
      version: 1,
      defaultProfile: 'work',
      profiles: {
        work: {
          provider: 'microsoft',
          clientType: 'public',
          flow: 'browser',
          capabilities: ['send', 'read'],
          sasl: 'auto',
          retry: { mode: 'any', maxAttempts: 4, initialDelayMs: 1000, multiplier: 2, maxDelayMs: 30000 },
          storage: 'file',
          tenant: 'common',
          smtp: { host: 'smtp.office365.com', port: 587, security: 'starttls' },
          imap: { host: 'outlook.office365.com', port: 993, security: 'tls' },
          clientId: '00000000-0000-0000-0000-0000000000aa',
          user: 'alice@contoso.test',
          scopes: ['https://outlook.office.com/SMTP.Send', 'offline_access'],
        },
      },
    },
    null,
    2,
  );

  it('the sample is valid (so the properties below start from a good file)', () => {
    expect(Object.keys(parseConfigText(good, 'config.json').profiles)).toEqual(['work']);
  });

  it('every truncation of a valid file is read or refused with exit 3 and the path', () => {
    for (let n = 0; n < good.length; n++) {
      const cfg = cleanly(() => parseConfigText(good.slice(0, n), '/x/config.json'), [3]);
      if (cfg === undefined) {
        try {
          parseConfigText(good.slice(0, n), '/x/config.json');
        } catch (e) {
          expect((e as Error).message).toContain('/x/config.json');
        }
      }
    }
  });

  it('any JSON value at any place in the file is read or refused with exit 3', () => {
    const paths: Array<(o: Record<string, unknown>, v: unknown) => void> = [
      (o, v) => (o.version = v),
      (o, v) => (o.defaultProfile = v),
      (o, v) => (o.profiles = v),
      (o, v) => ((o.profiles as Record<string, unknown>).work = v),
      (o, v) => ((o.profiles as Record<string, unknown>)[JSON.stringify(v ?? null).slice(0, 30)] = v),
      (o, v) => {
        const w = (o.profiles as Record<string, Record<string, unknown>>).work!;
        w[
          [
            'provider',
            'clientId',
            'tenant',
            'user',
            'scopes',
            'smtp',
            'imap',
            'storage',
            'retry',
            'capabilities',
          ][Math.abs(JSON.stringify(v ?? null).length) % 10]!
        ] = v;
      },
      (o, v) =>
        ((o.profiles as Record<string, Record<string, Record<string, unknown>>>).work!.retry!.maxAttempts =
          v),
    ];
    fc.assert(
      fc.property(fc.nat(paths.length - 1), fc.jsonValue({ maxDepth: 3 }), (i, v) => {
        const o = JSON.parse(good) as Record<string, unknown>;
        paths[i]!(o, v);
        cleanly(() => parseConfigText(JSON.stringify(o), 'config.json'), [3]);
      }),
      RUNS,
    );
  });

  it('random text and huge files are refused with exit 3, one line', () => {
    fc.assert(
      fc.property(nasty, (t) => void cleanly(() => parseConfigText(t, 'config.json'), [3])),
      RUNS,
    );
    const huge = `{"version":1,"profiles":{"w":${'['.repeat(200_000)}`;
    expect(cleanly(() => parseConfigText(huge, 'config.json'), [3])).toBeUndefined();
    const many = JSON.stringify({
      version: 1,
      profiles: { w: { provider: 'microsoft', x: 'y'.repeat(5_000_000) } },
    });
    // a profile that does not validate is kept aside (the others work) and refused when used
    expect(
      cleanly(() => resolveProfileName(parseConfigText(many, 'config.json'), 'w', {}), [3]),
    ).toBeUndefined();
  });
});

describe('attachment and message names', () => {
  it('sanitizeFilename always gives a short, plain, non-hidden name in one folder', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          nasty,
          fc.constantFrom(
            '..',
            '.',
            '../../etc/passwd',
            'C:\\x\\CON.txt',
            'con',
            ' . ',
            'a'.repeat(1000),
            '\u0000'.repeat(3),
          ),
        ),
        (raw) => {
          const s = sanitizeFilename(raw);
          expect(s.length).toBeGreaterThan(0);
          expect(Buffer.byteLength(s)).toBeLessThanOrEqual(MAX_NAME_BYTES);
          // eslint-disable-next-line no-control-regex -- no control characters in a file name
          expect(s).not.toMatch(/[/\\\0-\x1f<>:"|?*]/);
          expect(s).not.toMatch(/^\./);
          expect(s).not.toMatch(/[. ]$/);
          expect(s.split('.')[0]!.trim()).not.toMatch(/^(con|prn|aux|nul|com\d|lpt\d)$/i);
        },
      ),
      RUNS,
    );
  });
});

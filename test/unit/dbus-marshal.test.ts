/**
 * The D-Bus wire format of src/secrets/dbus.ts, without a bus: byte-exact encodings of small
 * values (alignment and padding as the D-Bus specification's "Marshaling" section lays them out),
 * round trips of the nested types the Secret Service uses, big-endian input, malformed input, and
 * the parsing of bus addresses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Variant,
  marshal,
  socketPaths,
  splitSignature,
  unmarshal,
  type DBusValue,
} from '../../src/secrets/dbus.js';

const hex = (b: Buffer) => b.toString('hex');
const roundTrip = (sig: string, values: DBusValue[]) => unmarshal(sig, marshal(sig, values));

describe('signatures', () => {
  it('splits into single complete types', () => {
    expect(splitSignature('sa{sv}(ii)ay')).toEqual(['s', 'a{sv}', '(ii)', 'ay']);
    expect(splitSignature('a{o(oayays)}')).toEqual(['a{o(oayays)}']);
    expect(splitSignature('')).toEqual([]);
  });
  it('rejects unknown codes and unbalanced containers', () => {
    expect(() => splitSignature('z')).toThrow(/unsupported type code/);
    expect(() => splitSignature('(ss')).toThrow(/truncated/);
    expect(() => splitSignature('a')).toThrow(/truncated/);
  });
});

describe('marshalling: exact bytes', () => {
  it('strings: u32 byte length, UTF-8 bytes, NUL', () => {
    expect(hex(marshal('s', ['abc']))).toBe('03000000' + '61626300');
    // é is 2 bytes, 🎉 is 4: the length counts bytes, not characters
    expect(hex(marshal('s', ['é🎉']))).toBe('06000000' + 'c3a9f09f8e89' + '00');
    expect(hex(marshal('g', ['a{ss}']))).toBe('05' + '617b73737d' + '00');
    expect(hex(marshal('o', ['/']))).toBe('01000000' + '2f00');
  });
  it('pads each value to its own alignment, with zero bytes', () => {
    // y at 0, pad to 8, t at 8
    expect(hex(marshal('yt', [1, 2n]))).toBe('01' + '00'.repeat(7) + '0200000000000000');
    // y, pad to 2, n; y, pad to 4, u
    expect(hex(marshal('ynyu', [1, -2, 3, 4]))).toBe('01' + '00' + 'feff' + '03' + '000000' + '04000000');
    expect(hex(marshal('bd', [true, 1.5]))).toBe('01000000' + '00000000' + '000000000000f83f');
  });
  it('an empty array keeps the padding to its element alignment, which its length does not count', () => {
    // y; pad to 4; length 0; pad to 8 (struct alignment)
    expect(hex(marshal('ya(ss)', [7, []]))).toBe('07000000' + '00000000');
    expect(hex(marshal('a(ss)', [[]]))).toBe('00000000' + '00000000');
    expect(roundTrip('ya(ss)y', [7, [], 9])).toEqual([7, [], 9]);
  });
  it('array length: bytes of the elements, from the first element (after the padding)', () => {
    // the length at 0, padding to 8, then two 8-byte structs: the length is 16
    const b = marshal('a(yu)', [
      [
        [1, 2],
        [3, 4],
      ],
    ]);
    expect(b.readUInt32LE(0)).toBe(16);
    expect(hex(b.subarray(8))).toBe('01000000' + '02000000' + '03000000' + '04000000');
  });
  it('variant: signature, then the value aligned as its own type', () => {
    expect(hex(marshal('v', [new Variant('s', '')]))).toBe('01' + '7300' + '00' + '00000000' + '00');
    expect(hex(marshal('v', [new Variant('t', 1n)]))).toBe(
      '01' + '7400' + '00'.repeat(5) + '0100000000000000',
    );
  });
});

describe('round trips', () => {
  it('the Secret Service replies and arguments', () => {
    const secret = [
      '/org/freedesktop/secrets/session/s1',
      Buffer.alloc(0),
      Buffer.from('pässwörd 🎉\nline'),
      'text/plain',
    ];
    const [dict] = roundTrip('a{o(oayays)}', [[['/org/freedesktop/secrets/collection/login/1', secret]]]);
    expect(dict).toEqual([['/org/freedesktop/secrets/collection/login/1', secret]]);
    expect(roundTrip('aoao', [['/a', '/b/c'], []])).toEqual([['/a', '/b/c'], []]);
    expect(roundTrip('(aoao)', [[[], ['/x']]])).toEqual([[[], ['/x']]]);
    expect(roundTrip('sv', ['plain', new Variant('s', '')])).toEqual(['plain', new Variant('s', '')]);
    expect(roundTrip('vo', [new Variant('s', ''), '/s'])).toEqual([new Variant('s', ''), '/s']);
    expect(roundTrip('as', [['a', '', 'ünï', '🎉']])).toEqual([['a', '', 'ünï', '🎉']]);
    expect(roundTrip('ay', [Buffer.alloc(0)])).toEqual([Buffer.alloc(0)]);
  });
  it('dicts accept a plain object or a Map and come back as [key, value] pairs', () => {
    const attrs = { service: 'svc', account: 'ä/b', 'xdg:schema': 'org.freedesktop.Secret.Generic' };
    expect(roundTrip('a{ss}', [attrs])).toEqual([Object.entries(attrs)]);
    expect(roundTrip('a{ss}', [new Map([['k', 'v']])])).toEqual([[['k', 'v']]]);
    expect(roundTrip('a{ss}', [{}])).toEqual([[]]);
  });
  it('nested variants, structs and every fixed type', () => {
    const props = {
      'org.freedesktop.Secret.Item.Label': new Variant('s', 'x'),
      'org.freedesktop.Secret.Item.Attributes': new Variant('a{ss}', [['a', 'b']]),
      deep: new Variant('v', new Variant('(yt)', [255, 2n ** 64n - 1n])),
    };
    expect(roundTrip('a{sv}', [props])).toEqual([Object.entries(props)]);
    const all: DBusValue[] = [
      255,
      true,
      -32768,
      65535,
      -(2 ** 31),
      2 ** 32 - 1,
      -(2n ** 63n),
      2n ** 64n - 1n,
      -0.25,
    ];
    expect(roundTrip('ybnqiuxtd', all)).toEqual(all);
  });
  it('property: any strings survive a{ss} and as', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'grapheme' }), fc.string())),
        fc.integer({ min: 0, max: 255 }),
        (pairs, y) => {
          const clean = pairs.map(([k, v]) => [k.replace(/\0/g, ''), v.replace(/\0/g, '')]);
          expect(roundTrip('ya{ss}as', [y, clean, clean.map((p) => p[0]!)])).toEqual([
            y,
            clean,
            clean.map((p) => p[0]),
          ]);
        },
      ),
    );
  });
});

describe('reading', () => {
  it('big-endian input (a peer on a big-endian machine)', () => {
    const be = Buffer.from('01' + '000000' + '00000003' + '61626300' + '00000000' + '0000002a', 'hex');
    // y, pad to 4, s "abc" (length big-endian), an empty a(t) (its padding to 8 is nil here), u 42
    expect(unmarshal('ysa(t)u', be, false)).toEqual([1, 'abc', [], 42]);
  });
  it('rejects malformed input without throwing anything but an Error', () => {
    expect(() => unmarshal('s', Buffer.from('05000000616263', 'hex'))).toThrow(/truncated/);
    expect(() => unmarshal('s', Buffer.from('0300000061626378', 'hex'))).toThrow(/NUL/);
    expect(() => unmarshal('u', Buffer.from('0100000000', 'hex'))).toThrow(/trailing/);
    expect(() => unmarshal('as', Buffer.from('ffffffff', 'hex'))).toThrow(/too long/);
    expect(() => unmarshal('v', Buffer.from('02737300', 'hex'))).toThrow(/variant/);
    expect(() => unmarshal('ay', Buffer.from('08000000' + '0102', 'hex'))).toThrow(/truncated/);
  });
  it('rejects values of the wrong type, without echoing the value', () => {
    expect(() => marshal('s', [42])).toThrow(/a string is needed/);
    expect(() => marshal('u', ['secret-value'])).toThrow(/^(?!.*secret-value).*a number is needed/);
    expect(() => marshal('as', ['x'])).toThrow(/an array is needed/);
    expect(() => marshal('(ss)', [['a']])).toThrow(/2 fields/);
    expect(() => marshal('v', ['x'])).toThrow(/Variant/);
    expect(() => marshal('ss', ['x'])).toThrow(/2 values/);
  });
});

describe('bus addresses', () => {
  it('unix:path and unix:abstract, in order, skipping what we cannot use', () => {
    expect(socketPaths('unix:path=/run/user/1000/bus')).toEqual(['/run/user/1000/bus']);
    expect(socketPaths('unix:abstract=/tmp/dbus-AbC,guid=0123abcd')).toEqual(['\0/tmp/dbus-AbC']);
    expect(socketPaths('tcp:host=localhost,port=1;unix:guid=x,path=/a%20b%3bc;unix:abstract=z')).toEqual([
      '/a b;c',
      '\0z',
    ]);
  });
  it('nothing usable', () => {
    expect(socketPaths('')).toEqual([]);
    expect(socketPaths('unix:tmpdir=/tmp')).toEqual([]);
    expect(socketPaths('unix:runtime=yes;launchd:env=X;autolaunch:')).toEqual([]);
    expect(socketPaths('unix:path=/bad%zz')).toEqual([]);
    expect(socketPaths('unix:path=')).toEqual([]);
    expect(socketPaths('garbage')).toEqual([]);
  });
});

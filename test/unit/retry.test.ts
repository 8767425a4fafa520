import { describe, it, expect } from 'vitest';
import { classify, isRetryable, toSendError, withRetry } from '../../src/mail/retry.js';
import { backoffDelay } from '../../src/net/backoff.js';
import { adviseSmtpReply } from '../../src/mail/smtp-replies.js';
import type { RetryPolicy } from '../../src/config/schema.js';

const any: RetryPolicy = {
  mode: 'any',
  maxAttempts: 4,
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 5000,
};
const smtpErr = (responseCode: number, response: string, code = 'EENVELOPE') =>
  Object.assign(new Error('x'), { code, responseCode, response });
const net = (c: string) => Object.assign(new Error(`connect ${c} 127.0.0.1:25`), { code: 'ESOCKET' });

describe('classify and isRetryable', () => {
  it('4xx and network errors are temporary; 5xx permanent; EAUTH 5xx auth', () => {
    expect(classify(smtpErr(451, '451 4.3.0 later')).kind).toBe('temporary');
    expect(classify(smtpErr(421, '421 4.7.0 closing')).kind).toBe('temporary');
    expect(classify(smtpErr(554, '554 5.7.1 no')).kind).toBe('permanent');
    expect(classify(smtpErr(535, '535 5.7.3 Authentication unsuccessful', 'EAUTH')).kind).toBe('auth');
    for (const c of ['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED'])
      expect(classify(net(c)).kind).toBe('temporary');
    expect(
      classify(Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'ESOCKET' }))
        .kind,
    ).toBe('tls');
  });

  it('mode none never retries; status retries only the listed codes (default 421 432 450 451 452) and network errors', () => {
    expect(isRetryable({ ...any, mode: 'none' }, smtpErr(451, '451'))).toBe(false);
    expect(isRetryable(any, smtpErr(454, '454'))).toBe(true);
    const status: RetryPolicy = { ...any, mode: 'status' };
    expect(isRetryable(status, smtpErr(451, '451'))).toBe(true);
    expect(isRetryable(status, smtpErr(454, '454'))).toBe(false);
    expect(isRetryable({ ...status, statusCodes: [454] }, smtpErr(454, '454'))).toBe(true);
    expect(isRetryable(status, net('ECONNRESET'))).toBe(true);
    expect(isRetryable(any, smtpErr(550, '550'))).toBe(false);
  });
});

describe('backoff', () => {
  it('grows by the multiplier, is capped, and is jittered between half and all', () => {
    expect(backoffDelay(any, 1, () => 1)).toBe(1000);
    expect(backoffDelay(any, 2, () => 1)).toBe(2000);
    expect(backoffDelay(any, 3, () => 0)).toBe(2000);
    expect(backoffDelay(any, 10, () => 1)).toBe(5000);
  });

  it('withRetry: maxAttempts counts the first try; 5xx is not retried', async () => {
    const waits: number[] = [];
    let n = 0;
    await expect(
      withRetry(
        any,
        () => {
          n++;
          return Promise.reject(smtpErr(451, '451 4.3.0 later'));
        },
        {
          sleep: (ms) => {
            waits.push(ms);
            return Promise.resolve();
          },
          random: () => 1,
        },
      ),
    ).rejects.toThrow();
    expect(n).toBe(4);
    expect(waits).toEqual([1000, 2000, 4000]);
    n = 0;
    await expect(
      withRetry(
        any,
        () => {
          n++;
          return Promise.reject(smtpErr(550, '550 5.1.1 no'));
        },
        { sleep: () => Promise.resolve() },
      ),
    ).rejects.toThrow();
    expect(n).toBe(1);
    n = 0;
    const ok = await withRetry(
      any,
      () => (++n < 3 ? Promise.reject(net('ECONNRESET')) : Promise.resolve('sent')),
      { sleep: () => Promise.resolve() },
    );
    expect(ok).toBe('sent');
  });
});

describe('errors the user sees', () => {
  it('temporary → 6, refusal → 5, certificate → 3, with sentences', () => {
    expect(toSendError(smtpErr(451, '451 4.3.0 later'), { attempts: 4 })).toMatchObject({ exitCode: 6 });
    expect(toSendError(smtpErr(554, '554 5.7.1 no')).exitCode).toBe(5);
    expect(toSendError(net('ECONNREFUSED')).exitCode).toBe(6);
    expect(
      toSendError(Object.assign(new Error('unable to verify the first certificate'), { code: 'ESOCKET' }))
        .exitCode,
    ).toBe(3);
    const auth = toSendError(smtpErr(535, '535 5.7.3 Authentication unsuccessful [X]', 'EAUTH'), {
      user: 'me@x.test',
    });
    expect(auth.exitCode).toBe(5);
    expect(auth.hint).toMatch(/SmtpClientAuthenticationDisabled/);
  });

  it.each([
    [
      '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.',
      /disabled for this tenant/,
      /Set-TransportConfig/,
    ],
    [
      '554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied',
      /may not send as/,
      /SendAs/,
    ],
    ['550 5.7.60 SMTP; Client does not have permissions to send as this sender', /may not send as/, /SendAs/],
    ['534-5.7.9 Application-specific password required.', /Gmail/, /mail\.google\.com/],
    ['535-5.7.8 Username and Password not accepted.', /Gmail/, /login/],
    ['535 5.7.3 Authentication unsuccessful', /authentication unsuccessful/, /Set-CASMailbox/],
    ['452 4.3.1 Insufficient system storage', /temporarily/, /later/],
    ['550 5.7.1 nope', /refused the message/, /not help/],
  ])('%s', (reply, msg, hint) => {
    const a = adviseSmtpReply(reply, { user: 'me@x.test', from: 'boss@x.test' });
    expect(a.message).toMatch(msg);
    expect(a.hint).toMatch(hint);
  });
});

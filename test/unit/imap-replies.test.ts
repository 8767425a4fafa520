/**
 * IMAP refusals as the user sees them: the error class (exit code), the stable code, the sentence
 * and the hint, for errors shaped the way imapflow 2 throws them.
 */
import { describe, expect, it } from 'vitest';
import { decodeSaslError, describeOauthError, imapErrorFrom } from '../../src/mail/imap-replies.js';
import { imapError } from '../../src/mail/imap.js';
import { ConfigError, MailServerError, TransientError } from '../../src/errors/index.js';

/** A failed AUTHENTICATE as imapflow reports it (commands/authenticate.ts handleAuthError). */
function authFailure(oauthError?: Record<string, unknown>) {
  return Object.assign(new Error('Command failed'), {
    response: 'AUTHENTICATE failed: [AUTHENTICATIONFAILED] Authentication failed.',
    serverResponseCode: 'AUTHENTICATIONFAILED',
    authenticationFailed: true,
    ...(oauthError ? { oauthError } : {}),
  });
}

/** A tagged NO to an ordinary command as imapflow 2 reports it: the parsed reply under `response`. */
function commandNo(text: string, command = 'SELECT') {
  return Object.assign(new Error('Command failed'), {
    response: { tag: '8', command: 'NO', attributes: [{ type: 'TEXT', value: text }] },
    responseStatus: 'NO',
    responseText: text,
    command,
  });
}

describe('SASL error challenges (RFC 7628 §3.2.2)', () => {
  it('decodes the base64 JSON, and nothing else', () => {
    const b64 = Buffer.from(
      '{"status":"invalid_token","scope":"IMAP.AccessAsUser.All","schemes":"bearer"}',
    ).toString('base64');
    expect(decodeSaslError(b64)).toEqual({
      status: 'invalid_token',
      scope: 'IMAP.AccessAsUser.All',
      schemes: 'bearer',
    });
    expect(decodeSaslError('not base64 json')).toBeUndefined();
    expect(decodeSaslError(Buffer.from('[1,2]').toString('base64'))).toBeUndefined();
    expect(decodeSaslError(Buffer.from('"text"').toString('base64'))).toBeUndefined();
  });

  it('describes the statuses servers send', () => {
    expect(describeOauthError({ status: 'invalid_token' })).toBe('the token is invalid or expired');
    expect(describeOauthError({ status: '401' })).toBe('the token is invalid or expired');
    expect(describeOauthError({ status: 'insufficient_scope', scope: 'https://mail.google.com/' })).toBe(
      'the token lacks the scope the server requires; required scope: https://mail.google.com/',
    );
    expect(describeOauthError({ status: '400' })).toMatch(/malformed/);
    expect(describeOauthError({ status: 'weird' })).toBe('status weird');
    expect(describeOauthError({})).toBe('');
  });
});

describe('imapErrorFrom', () => {
  it("a refused token: exit 5, the user and host named, the server's reason decoded", () => {
    const e = imapErrorFrom(authFailure({ status: 'invalid_token', schemes: 'bearer' }), {
      user: 'alice@contoso.test',
      host: 'outlook.office365.com',
      profile: 'work',
    });
    expect(e).toBeInstanceOf(MailServerError);
    expect(e.exitCode).toBe(5);
    expect(e.code).toBe('imap_auth_refused');
    expect(e.message).toBe(
      'AUTHENTICATE failed for alice@contoso.test on outlook.office365.com: AUTHENTICATE failed: [AUTHENTICATIONFAILED] Authentication failed.; ' +
        "server's reason: the token is invalid or expired",
    );
    expect(e.hint).toMatch(/oauthmail login work$/);
    expect((e as MailServerError).serverCode).toBe('AUTHENTICATIONFAILED');
  });

  it('a token without the IMAP scope: the hint names the scopes to sign in with', () => {
    const e = imapErrorFrom(authFailure({ status: 'insufficient_scope', scope: 'IMAP.AccessAsUser.All' }), {
      user: 'a@b.test',
    });
    expect(e.code).toBe('imap_auth_refused');
    expect(e.message).toContain('required scope: IMAP.AccessAsUser.All');
    expect(e.hint).toMatch(/IMAP\.AccessAsUser\.All.*mail\.google\.com/);
  });

  it('IMAP disabled (Gmail) and authenticated-but-not-connected (Exchange): what an admin runs', () => {
    const gmail = imapErrorFrom(
      Object.assign(new Error('Command failed'), {
        response: '[ALERT] Your account is not enabled for IMAP use.',
        authenticationFailed: true,
      }),
      { user: 'carol@fabrikam.test' },
    );
    expect(gmail.code).toBe('imap_disabled');
    expect(gmail.exitCode).toBe(5);
    expect(gmail.hint).toContain('Set-CASMailbox -Identity carol@fabrikam.test -ImapEnabled $true');
    // (through imapError: imapErrorFrom alone reads imapflow 2's parsed `response` object as the
    // reply text, "[object Object]", and misses this sentence; see the imapError tests below)
    const exo = imapError(commandNo('User is authenticated but not connected.'), {
      user: 'shared@contoso.test',
    });
    expect(exo.code).toBe('imap_not_connected');
    expect(exo.hint).toContain('Add-MailboxPermission -Identity shared@contoso.test');
  });

  it('a missing mailbox: exit 5 and the command that lists the folders', () => {
    const e = imapErrorFrom(
      { response: "[NONEXISTENT] Mailbox doesn't exist: Archive", command: 'SELECT' },
      { mailbox: 'Archive' },
    );
    expect(e.code).toBe('imap_mailbox_not_found');
    expect(e.exitCode).toBe(5);
    expect(e.message).toBe("mailbox Archive not found: [NONEXISTENT] Mailbox doesn't exist: Archive");
    expect(e.hint).toContain('oauthmail mailboxes');
  });

  it('network trouble and busy servers are safe to retry (exit 6); a certificate problem is config (exit 3)', () => {
    const net = imapErrorFrom(
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:993'), { code: 'ECONNREFUSED' }),
      { host: 'imap.example.com' },
    );
    expect(net).toBeInstanceOf(TransientError);
    expect(net.exitCode).toBe(6);
    expect(net.code).toBe('imap_network');
    const busy = imapErrorFrom({ response: '[UNAVAILABLE] Server busy, try again later' });
    expect(busy.code).toBe('imap_unavailable');
    expect(busy.exitCode).toBe(6);
    const tls = imapErrorFrom(
      Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
    );
    expect(tls).toBeInstanceOf(ConfigError);
    expect(tls.exitCode).toBe(3);
    expect(tls.hint).toContain('--ca FILE');
  });
});

describe('imapError (src/mail/imap.ts): imapflow 2 error shapes, never explained twice', () => {
  it('an error already explained is passed on unchanged (a missing mailbox stays exit 5)', () => {
    const first = imapError(commandNo("Mailbox doesn't exist: Nope"), { mailbox: 'Nope' });
    expect(first.code).toBe('imap_mailbox_not_found');
    const again = imapError(first, { mailbox: 'Nope', user: 'alice@contoso.test' });
    expect(again).toBe(first);
    expect(again.exitCode).toBe(5);
  });

  it('the reply text is read from responseText when `response` is the parsed reply object', () => {
    const e = imapError(commandNo('Mailbox is read-only', 'STORE'));
    expect(e.code).toBe('imap_refused');
    expect(e.message).toBe('the IMAP server refused STORE: Mailbox is read-only');
    expect(e.message).not.toContain('[object Object]');
  });

  it("imapflow's NotFound (STATUS of a mailbox LIST does not know) is a missing mailbox", () => {
    const inner = commandNo('Mailbox does not exist', 'STATUS');
    const e = imapError(
      Object.assign(new Error("Mailbox doesn't exist: Done"), { code: 'NotFound', response: inner }),
      { mailbox: 'Done' },
    );
    expect(e).toBeInstanceOf(MailServerError);
    expect(e.code).toBe('imap_mailbox_not_found');
    expect(e.message).toBe("mailbox Done not found: Mailbox doesn't exist: Done");
    expect(e.message).not.toContain('Command failed');
  });

  it('a refused AUTHENTICATE goes through unchanged in meaning', () => {
    const e = imapError(authFailure({ status: 'invalid_token' }), {
      user: 'alice@contoso.test',
      host: 'localhost',
    });
    expect(e.code).toBe('imap_auth_refused');
    expect(e.message).toContain("server's reason: the token is invalid or expired");
  });
});

describe('imapflow 2 reply objects', () => {
  it('reads responseText when response is the parsed reply object', async () => {
    const { replyText } = await import('../../src/mail/imap-replies.js');
    expect(
      replyText({ response: { tag: 'A1', command: 'NO' }, responseText: 'Mailbox does not exist' }),
    ).toBe('Mailbox does not exist');
    expect(replyText({ response: 'NO [AUTHENTICATIONFAILED] Authentication failed.' })).toContain(
      'AUTHENTICATIONFAILED',
    );
  });
});

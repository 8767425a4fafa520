/**
 * Sentences for the SMTP refusals people actually meet with Office 365 and Gmail. Matched on the
 * reply code plus the enhanced status code (RFC 3463) and a few words of the text, since
 * providers reuse codes: Microsoft's 535 5.7.3 and 5.7.139 are both "authentication unsuccessful".
 */

export interface ReplyAdvice {
  /** What happened, in one sentence. */
  message: string;
  /** What to do about it. */
  hint: string;
}

/** Pull "535" and "5.7.3" out of a reply line such as "535 5.7.3 Authentication unsuccessful". */
export function parseReply(reply: string | undefined): { code?: number; enhanced?: string } {
  if (!reply) return {};
  const m = /^(\d{3})[ -](?:(\d\.\d{1,3}\.\d{1,3})\b)?/.exec(reply.trim());
  if (!m) return {};
  return { code: Number(m[1]), ...(m[2] ? { enhanced: m[2] } : {}) };
}

export function adviseSmtpReply(
  reply: string | undefined,
  ctx: { user?: string; from?: string } = {},
): ReplyAdvice {
  const r = reply ?? '';
  const { code, enhanced } = parseReply(r);
  const user = ctx.user ?? 'the mailbox';
  if (/5\.7\.139/.test(r)) {
    return {
      message: 'SMTP AUTH is disabled for this tenant (5.7.139)',
      hint:
        'an Exchange admin must allow it: Set-TransportConfig -SmtpClientAuthenticationDisabled $false ' +
        `(or per mailbox: Set-CASMailbox -Identity ${user} -SmtpClientAuthenticationDisabled $false)`,
    };
  }
  // Exchange Online, app-only token: the service principal has no permission on the mailbox
  if (code === 430 && enhanced === '4.2.0' && /STOREDRV/i.test(r)) {
    return {
      message: `Exchange could not open the mailbox ${user} for this app (430 4.2.0 STOREDRV): the app has no permission on it`,
      hint:
        'an Exchange admin must register the app and grant it the mailbox: New-ServicePrincipal -AppId APP_ID -ObjectId ENTERPRISE_APP_OBJECT_ID, ' +
        `then Add-MailboxPermission -Identity ${user} -User ENTERPRISE_APP_OBJECT_ID -AccessRights FullAccess (oauthmail guide PROFILE prints these)`,
    };
  }
  if (
    /SendAsDenied|5\.7\.60/i.test(r) ||
    (code === 554 && enhanced === '5.2.0' && /send.?as|StoreDrv/i.test(r))
  ) {
    return {
      message: `the signed-in account may not send as ${ctx.from ?? 'this From address'} (SendAsDenied)`,
      hint: `send from ${user}, or have an admin grant Send As: Add-RecipientPermission -Identity ${ctx.from ?? 'FROM'} -Trustee ${user} -AccessRights SendAs`,
    };
  }
  if (code === 535 && enhanced === '5.7.3') {
    return {
      message: `authentication unsuccessful for ${user} (535 5.7.3)`,
      hint:
        "check that the profile's user is the mailbox the token was issued for (or one it has FullAccess to), " +
        `and that SMTP AUTH is enabled for it: Set-CASMailbox -Identity ${user} -SmtpClientAuthenticationDisabled $false`,
    };
  }
  if (code === 534 && enhanced === '5.7.9') {
    return {
      message: 'Gmail refused the sign-in: application-specific password or OAuth required (534 5.7.9)',
      hint: 'the token must carry the scope https://mail.google.com/; sign in again: oauthmail login PROFILE',
    };
  }
  if (code === 535 && enhanced === '5.7.8') {
    return {
      message: 'Gmail did not accept the credentials (535 5.7.8)',
      hint: `the token was refused: check that the profile's user (${user}) is the account that signed in, then sign in again: oauthmail login PROFILE`,
    };
  }
  if (code === 535 || code === 534 || code === 530) {
    return {
      message: `the mail server refused the sign-in for ${user} (${code}${enhanced ? ' ' + enhanced : ''})`,
      hint: "check the mailbox user and the token's scopes (oauthmail test PROFILE), or sign in again: oauthmail login PROFILE",
    };
  }
  if (code === 550 && /^5\.1\.[01]$/.test(enhanced ?? '')) {
    return {
      message: 'the server does not know the recipient (550 ' + enhanced + ')',
      hint: 'check the address',
    };
  }
  if (code !== undefined && code >= 400 && code < 500) {
    return {
      message: `the mail server is temporarily not accepting mail (${code}${enhanced ? ' ' + enhanced : ''})`,
      hint: 'this is temporary: try again later (exit code 6 / sendmail 75 tells a queue to retry)',
    };
  }
  if (code !== undefined && code >= 500) {
    return {
      message: `the mail server refused the message (${code}${enhanced ? ' ' + enhanced : ''})`,
      hint: "the server's reply says why; retrying will not help",
    };
  }
  return { message: 'the mail server refused', hint: "run again with --verbose to see the server's reply" };
}

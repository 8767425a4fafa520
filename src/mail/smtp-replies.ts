/**
 * Sentences for the SMTP refusals people actually meet with Office 365 and Gmail. Matched on the
 * reply code plus the enhanced status code (RFC 3463) and a few words of the text, since
 * providers reuse codes: Microsoft's 535 5.7.3 and 5.7.139 are both "authentication unsuccessful".
 */

import type { Provider } from '../config/schema.js';

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

export interface ReplyContext {
  /** The SASL user (the mailbox). */
  user?: string;
  from?: string;
  /** The profile's name, for the commands in hints; without it they name no profile (the default one). */
  profile?: string;
  /** The profile's provider: the same reply code means different things at Gmail and Exchange. */
  provider?: Provider;
}

/** `oauthmail <cmd> NAME` with the real profile name, or the bare command (the default profile). */
function cmd(ctx: ReplyContext, command: string): string {
  return `oauthmail ${command}${ctx.profile ? ` ${ctx.profile}` : ''}`;
}

/**
 * Exchange Online's 535 5.7.139 comes with several texts, each with its own cause and fix
 * (https://aka.ms/smtp_auth_disabled): SMTP AUTH off for the whole tenant, off for one mailbox,
 * the credentials (for OAuth: the token) refused, or the account blocked by security defaults.
 */
function advise57139(r: string, user: string, ctx: ReplyContext): ReplyAdvice {
  if (/disabled for the Mailbox/i.test(r)) {
    return {
      message: `SMTP AUTH is disabled for the mailbox ${user} (535 5.7.139)`,
      hint: `an Exchange admin must allow it for this mailbox: Set-CASMailbox -Identity ${user} -SmtpClientAuthenticationDisabled $false`,
    };
  }
  if (/disabled for the Tenant/i.test(r)) {
    return {
      message: 'SMTP AUTH is disabled for this tenant (535 5.7.139)',
      hint:
        'an Exchange admin must allow it for the organization: Set-TransportConfig -SmtpClientAuthenticationDisabled $false ' +
        `(or for this mailbox only: Set-CASMailbox -Identity ${user} -SmtpClientAuthenticationDisabled $false)`,
    };
  }
  if (/credentials were incorrect/i.test(r)) {
    return {
      message: `Exchange Online refused the credentials for ${user} (535 5.7.139): the token is not valid for this mailbox`,
      hint:
        `check that the profile's user (${user}) is the account that signed in (or a mailbox it has FullAccess to) ` +
        `and that the token is for https://outlook.office.com/SMTP.Send (${cmd(ctx, 'test')}); then sign in again: ${cmd(ctx, 'login')}`,
    };
  }
  if (/security defaults/i.test(r)) {
    return {
      message: `${user} is blocked by the organization's security defaults policy (535 5.7.139)`,
      hint:
        'a Global Administrator must turn off security defaults (Microsoft Entra admin center → Identity → Overview → Properties → ' +
        'Manage security defaults) and protect sign-ins with Conditional Access instead; until then SMTP AUTH is refused for this account',
    };
  }
  return {
    message: `Exchange Online refused SMTP AUTH for ${user} (535 5.7.139)`,
    hint:
      "the server's reply says why (see https://aka.ms/smtp_auth_disabled); SMTP AUTH must be allowed for the mailbox: " +
      `Set-CASMailbox -Identity ${user} -SmtpClientAuthenticationDisabled $false`,
  };
}

/** Gmail's words (535 5.7.8 / 534 5.7.9) apply to a Google profile, or, with no provider known, to Gmail's own texts. */
function isGmail(r: string, ctx: ReplyContext): boolean {
  if (ctx.provider) return ctx.provider === 'google';
  return /Username and Password not accepted|Application-specific password|gsmtp|support\.google\.com/i.test(
    r,
  );
}

export function adviseSmtpReply(reply: string | undefined, ctx: ReplyContext = {}): ReplyAdvice {
  const r = reply ?? '';
  const { code, enhanced } = parseReply(r);
  const user = ctx.user ?? 'the mailbox';
  if (/5\.7\.139/.test(r)) return advise57139(r, user, ctx);
  // Exchange Online, app-only token: the service principal has no permission on the mailbox
  if (code === 430 && enhanced === '4.2.0' && /STOREDRV/i.test(r)) {
    return {
      message: `Exchange could not open the mailbox ${user} for this app (430 4.2.0 STOREDRV): the app has no permission on it`,
      hint:
        'an Exchange admin must register the app and grant it the mailbox: New-ServicePrincipal -AppId APP_ID -ObjectId ENTERPRISE_APP_OBJECT_ID, ' +
        `then Add-MailboxPermission -Identity ${user} -User ENTERPRISE_APP_OBJECT_ID -AccessRights FullAccess (${cmd(ctx, 'guide')} prints these)`,
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
  if (code === 534 && enhanced === '5.7.9' && isGmail(r, ctx)) {
    return {
      message: 'Gmail refused the sign-in: application-specific password or OAuth required (534 5.7.9)',
      hint: `the token must carry the scope https://mail.google.com/; sign in again: ${cmd(ctx, 'login')}`,
    };
  }
  if (code === 535 && enhanced === '5.7.8' && isGmail(r, ctx)) {
    return {
      message: 'Gmail did not accept the credentials (535 5.7.8)',
      hint: `the token was refused: check that the profile's user (${user}) is the account that signed in, then sign in again: ${cmd(ctx, 'login')}`,
    };
  }
  if (code === 535 || code === 534 || code === 530) {
    const status = `${code}${enhanced ? ' ' + enhanced : ''}`;
    if (ctx.provider === 'microsoft') {
      return {
        message: `the mail server refused the sign-in for ${user} (${status})`,
        hint:
          `check that the profile's user (${user}) is the account that signed in, or a mailbox it has FullAccess and Send As on, ` +
          `and that the token is for https://outlook.office.com/SMTP.Send (${cmd(ctx, 'test')}); then sign in again: ${cmd(ctx, 'login')}`,
      };
    }
    return {
      message: `the mail server refused the sign-in for ${user} (${status})`,
      hint: `check that the profile's user (${user}) is the account that signed in and the token's scopes (${cmd(ctx, 'test')}), or sign in again: ${cmd(ctx, 'login')}`,
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

/** The SMTP reply catalogue: Exchange's several 535 5.7.139 texts, provider-aware 535 advice, real profile names. */
import { describe, it, expect } from 'vitest';
import { adviseSmtpReply } from '../../src/mail/smtp-replies.js';

const MS = { user: 'alice@contoso.com', profile: 'work', provider: 'microsoft' as const };

describe('535 5.7.139: each of Exchange Online texts gets its own sentence and fix', () => {
  it('disabled for the Mailbox: the per-mailbox Set-CASMailbox, not the tenant-wide switch', () => {
    const a = adviseSmtpReply(
      '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.',
      MS,
    );
    expect(a.message).toMatch(/disabled for the mailbox alice@contoso\.com/);
    expect(a.message).not.toMatch(/tenant/);
    expect(a.hint).toMatch(
      /^an Exchange admin must allow it for this mailbox: Set-CASMailbox -Identity alice@contoso\.com -SmtpClientAuthenticationDisabled \$false$/,
    );
    expect(a.hint).not.toMatch(/Set-TransportConfig/);
  });

  it('disabled for the Tenant: Set-TransportConfig first', () => {
    const a = adviseSmtpReply(
      '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.',
      MS,
    );
    expect(a.message).toMatch(/disabled for this tenant/);
    expect(a.hint).toMatch(/^an Exchange admin must allow it for the organization: Set-TransportConfig/);
  });

  it('the user credentials were incorrect: the token and the user, and sign in again with the profile name', () => {
    const a = adviseSmtpReply(
      '535 5.7.139 Authentication unsuccessful, the user credentials were incorrect. [SN4PR0601CA0012.namprd06.prod.outlook.com]',
      MS,
    );
    expect(a.message).toMatch(/refused the credentials for alice@contoso\.com/);
    expect(a.message).not.toMatch(/disabled/);
    expect(a.hint).not.toMatch(/Set-TransportConfig|Set-CASMailbox/);
    expect(a.hint).toMatch(/oauthmail login work$/);
    expect(a.hint).toMatch(/oauthmail test work/);
  });

  it('user is locked by security defaults: security defaults, not SMTP AUTH settings', () => {
    const a = adviseSmtpReply(
      "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.",
      MS,
    );
    expect(a.message).toMatch(/blocked by the organization's security defaults policy/);
    expect(a.hint).toMatch(/Manage security defaults/);
    expect(a.hint).not.toMatch(/Set-TransportConfig|Set-CASMailbox/);
  });
});

describe('535 5.7.8 follows the profile provider, and hints name the real profile', () => {
  it('a Microsoft profile is not told about Gmail', () => {
    const a = adviseSmtpReply('535 5.7.8 Error: authentication failed: (reason unavailable)', MS);
    expect(a.message).not.toMatch(/Gmail/);
    expect(a.message).toMatch(/refused the sign-in for alice@contoso\.com \(535 5\.7\.8\)/);
    expect(a.hint).toMatch(/outlook\.office\.com\/SMTP\.Send/);
    expect(a.hint).toMatch(/oauthmail login work$/);
  });

  it('a Google profile gets the Gmail sentence with its own name', () => {
    const a = adviseSmtpReply('535-5.7.8 Username and Password not accepted.', {
      user: 'carol@gmail.com',
      profile: 'gmail',
      provider: 'google',
    });
    expect(a.message).toMatch(/^Gmail did not accept/);
    expect(a.hint).toMatch(/oauthmail login gmail$/);
  });

  it('no hint prints a PROFILE or NAME placeholder', () => {
    const replies = [
      '535 5.7.8 Error: authentication failed',
      '534 5.7.9 Application-specific password required',
      '535 5.7.3 Authentication unsuccessful',
      '530 5.7.0 Must issue a STARTTLS command first',
      '430 4.2.0 STOREDRV.Submission.Exception:OutOfMemoryException',
      '535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.',
    ];
    for (const provider of ['microsoft', 'google', 'custom'] as const) {
      for (const r of replies) {
        const a = adviseSmtpReply(r, { user: 'u@x.test', profile: 'corp', provider });
        expect(`${a.message} ${a.hint}`, r).not.toMatch(/PROFILE|\bNAME\b/);
      }
    }
  });
});

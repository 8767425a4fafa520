/**
 * `oauthmail guide`: step-by-step instructions to register the app a profile needs, in the Azure
 * portal or the Google Cloud console, with the profile's own values filled in (redirect URI,
 * platform, permissions by their portal names, consent, secret expiry). Plain text, deterministic
 * (no dates, no terminal width), so that it can be checked against a snapshot a person has read.
 */
import type { Profile } from '../config/schema.js';
import {
  microsoftAuthority,
  scopesFor as presetScopes,
  MICROSOFT_APP_ONLY_SCOPE,
} from '../config/presets.js';
import { splitAuthority } from '../auth/errors/aadsts.js';
import { buildConsentUrl, redirectUriFor } from './consent-url.js';
import { MICROSOFT_APP_ROLES, MICROSOFT_SCP } from './scopes.js';
import { customGuide } from './guide-custom.js';
import { nativeClientRedirect } from '../auth/errors/aadsts.js';

export interface GuideInput {
  /** Profile name, for the commands in the text; "NAME" when there is no profile yet. */
  name: string;
  profile: Partial<Profile> & Pick<Profile, 'provider'>;
}

const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

class Steps {
  private lines: string[] = [];
  private n = 0;
  title(t: string): void {
    this.lines.push(t, '='.repeat(t.length), '');
  }
  para(...t: string[]): void {
    this.lines.push(...t, '');
  }
  step(head: string, ...body: string[]): void {
    this.n++;
    this.lines.push(
      `${this.n}. ${head}`,
      ...body.flatMap((b) => b.split('\n')).map((b) => (b ? `   ${b}` : '')),
      '',
    );
  }
  text(): string {
    return this.lines.join('\n').replace(/\n+$/, '\n');
  }
}

export function renderGuide(input: GuideInput): string {
  if (input.profile.provider === 'custom') return customGuide(input);
  return input.profile.provider === 'google' ? googleGuide(input) : microsoftGuide(input);
}

function microsoftGuide({ name, profile: p }: GuideInput): string {
  const s = new Steps();
  const flow = p.flow ?? 'browser';
  const clientType = p.clientType ?? 'public';
  const caps = p.capabilities?.length ? p.capabilities : (['send', 'read'] as const);
  const appOnly = flow === 'client-credentials';
  const tenant = splitAuthority(microsoftAuthority({ tenant: p.tenant, authority: p.authority })).tenant;
  const multi = ['organizations', 'common', 'consumers'].includes(tenant);
  const redirect = redirectUriFor({ flow, redirectUri: p.redirectUri, redirectPort: p.redirectPort });
  const clientId = p.clientId && GUID_RE.test(p.clientId) ? p.clientId : undefined;

  s.title(`Register the Microsoft Entra ID app for profile "${name}"`);
  s.para(
    `Profile: tenant ${tenant}, sign-in flow ${flow}, app type ${clientType},`,
    `capabilities ${caps.join(' + ')}${p.user ? `, mailbox ${p.user}` : ''}.`,
    'Do this once per app. You need an account that may register apps in the tenant; granting',
    'consent for the whole organization needs an administrator (step "Grant admin consent").',
  );

  s.step(
    'Open the Azure portal: https://portal.azure.com (or https://entra.microsoft.com)',
    'Go to Microsoft Entra ID → App registrations → New registration.',
  );
  const accountTypes = multi
    ? tenant === 'consumers'
      ? '"Personal Microsoft accounts only"'
      : '"Accounts in any organizational directory (Any Microsoft Entra ID tenant - Multitenant)"'
    : '"Accounts in this organizational directory only (Single tenant)"';
  const regLines = [
    appOnly
      ? `Name: oauthmail ${name} (any name).`
      : `Name: oauthmail ${name} (any name; users see it on the consent page).`,
    `Supported account types: ${accountTypes}.`,
    multi
      ? `  (The profile uses the "${tenant}" authority. For one company only, pick Single tenant\n` +
        `  and set the tenant: oauthmail profile edit ${name} --set tenant=contoso.com)`
      : `  (The profile signs in to tenant ${tenant} only.)`,
  ];
  if (appOnly) {
    regLines.push(
      'Redirect URI: app-only sign-in has none. Only for the admin-consent link below, add the platform',
      '"Mobile and desktop applications" and tick the page that link ends on:',
      `  ${nativeClientRedirect(microsoftAuthority({ tenant: p.tenant, authority: p.authority }))}`,
    );
  } else if (flow === 'device') {
    regLines.push(
      'Redirect URI: optional for device code. To also allow `oauthmail login --browser`, choose the',
      `platform "Public client/native (mobile & desktop)" and enter exactly: ${redirect}`,
      'In the same platform also tick (for the links of oauthmail consent-url, which end there):',
      `  ${nativeClientRedirect(microsoftAuthority({ tenant: p.tenant, authority: p.authority }))}`,
    );
  } else if (clientType === 'public') {
    regLines.push(
      'Redirect URI: choose the platform "Public client/native (mobile & desktop)" and enter exactly:',
      `  ${redirect}`,
      '  (For http://localhost Entra accepts any port, which oauthmail picks when it signs in.)',
      'In the same platform also tick (for the links of oauthmail consent-url, which end there):',
      `  ${nativeClientRedirect(microsoftAuthority({ tenant: p.tenant, authority: p.authority }))}`,
    );
  } else {
    regLines.push(
      'Redirect URI: choose the platform "Web" and enter exactly:',
      `  ${redirect}`,
      "  (A Web redirect must match to the port: keep the profile's redirectUri and the registration the same.)",
    );
  }
  regLines.push('Click Register.');
  s.step('Register the app', ...regLines);

  s.step(
    'Copy the IDs from the Overview page',
    clientId
      ? `"Application (client) ID" must be ${clientId} (the profile's clientId).`
      : `Copy "Application (client) ID", then: oauthmail profile edit ${name} --set clientId=THE-ID`,
    multi
      ? '"Directory (tenant) ID" is your tenant; you may use it as the profile\'s tenant.'
      : `"Directory (tenant) ID" is the tenant (the profile uses ${tenant}).`,
  );

  if (!appOnly && flow === 'device') {
    s.step(
      'Allow public client flows',
      'Authentication → Advanced settings → "Allow public client flows" → Yes → Save.',
      'Without it the device-code sign-in fails with AADSTS7000218 or unauthorized_client.',
    );
  } else if (!appOnly && clientType === 'public') {
    s.step(
      'Optional: allow public client flows',
      'Only if you will also sign in with a device code (oauthmail login --device, e.g. over SSH):',
      'Authentication → Advanced settings → "Allow public client flows" → Yes → Save.',
    );
  }

  if (appOnly) {
    const roles = caps.map((c) => MICROSOFT_APP_ROLES[c]);
    s.step(
      'Add the application permissions',
      'API permissions → Add a permission → "APIs my organization uses" → search "Office 365 Exchange Online"',
      '→ Application permissions → tick:',
      ...roles.map((r) => `  ${r}`),
      '→ Add permissions. (Not Microsoft Graph: app-only SMTP/IMAP needs the Exchange Online roles.)',
      `oauthmail asks for the scope ${MICROSOFT_APP_ONLY_SCOPE}, which carries these roles.`,
    );
  } else {
    const scp = caps.map((c) => MICROSOFT_SCP[c]);
    s.step(
      'Add the delegated permissions',
      'API permissions → Add a permission → Microsoft Graph → Delegated permissions → tick:',
      '  offline_access, openid, profile, email',
      ...scp.map((x) => `  ${x}`),
      '→ Add permissions. You may remove User.Read; oauthmail does not use it.',
      'Either registration works: the same permissions are also under "APIs my organization uses" →',
      'Office 365 Exchange Online → Delegated permissions.',
      "What matters is the token's audience: oauthmail requests",
      ...presetScopes('microsoft', caps, flow)
        .filter((x) => x.startsWith('https://'))
        .map((x) => `  ${x}`),
      'for https://outlook.office.com, which SMTP and IMAP accept; a token requested for Microsoft',
      'Graph (https://graph.microsoft.com/SMTP.Send) is refused (535 5.7.3).',
    );
  }

  s.step(
    'Grant admin consent',
    `API permissions → "Grant admin consent for <your organization>" → Yes.`,
    appOnly
      ? 'Application permissions always need it: a Global Administrator or Privileged Role Administrator.'
      : 'Needed when users may not consent to apps themselves: a Global Administrator, Privileged Role',
    ...(appOnly ? [] : ['Administrator, Cloud Application Administrator or Application Administrator.']),
    'An administrator elsewhere can use this link instead:',
    `  ${buildConsentUrl(name, fillMicrosoft(p, clientId), true).url}`,
  );

  if (clientType === 'secret') {
    s.step(
      'Create the client secret',
      'Certificates & secrets → Client secrets → New client secret. Pick an expiry (at most 24 months);',
      'the app stops working on that day, so note it.',
      'Copy the secret\'s Value (not the "Secret ID"; it is shown only once) and store it:',
      `  oauthmail profile secret ${name} --stdin --expires YYYY-MM-DD`,
      p.clientSecretExpires
        ? `The profile says the current secret expires on ${p.clientSecretExpires}; create the next one before then.`
        : '`oauthmail status` warns when the recorded expiry date comes near.',
    );
  } else if (clientType === 'certificate') {
    s.step(
      'Upload the certificate',
      'Certificates & secrets → Certificates → Upload certificate (the public part: .cer, .pem or .crt).',
      p.certificateThumbprint
        ? `Its thumbprint must be ${p.certificateThumbprint} (the profile's certificateThumbprint).`
        : `Set the profile's thumbprint: oauthmail profile edit ${name} --set certificateThumbprint=HEX`,
      `Store the private key: oauthmail profile secret ${name} --certificate FILE.pem`,
    );
  }

  if (appOnly) {
    s.step(
      'Let the app into the mailbox (Exchange Online PowerShell, an Exchange administrator)',
      'Enterprise applications → your app → copy its "Object ID" (not the one under App registrations).',
      `  Connect-ExchangeOnline -Organization ${p.tenant && p.tenant.includes('.') ? p.tenant : 'contoso.onmicrosoft.com'}`,
      `  New-ServicePrincipal -AppId ${clientId ?? 'CLIENT-ID'} -ObjectId OBJECT-ID`,
      `  Add-MailboxPermission -Identity ${p.user ?? 'mailbox@contoso.com'} -User OBJECT-ID -AccessRights FullAccess`,
      ...(caps.includes('send')
        ? [
            'To send as the mailbox (SMTP.SendAsApp), also give the app SendAs on it:',
            `  Add-RecipientPermission -Identity ${p.user ?? 'mailbox@contoso.com'} -Trustee OBJECT-ID -AccessRights SendAs -Confirm:$false`,
          ]
        : []),
      'Without these, SMTP answers 430 4.2.0 STOREDRV and IMAP refuses the login.',
    );
  }
  if (caps.includes('send')) {
    s.step(
      'Make sure SMTP AUTH is allowed for the mailbox (an Exchange administrator)',
      `  Set-CASMailbox -Identity ${p.user ?? 'mailbox@contoso.com'} -SmtpClientAuthenticationDisabled $false`,
      'Otherwise sending fails with 535 5.7.139 even with a good token.',
    );
  }

  s.step(
    'Check it',
    appOnly ? `oauthmail login ${name}    (gets an app-only token)` : `oauthmail login ${name}`,
    `oauthmail test ${name}     (checks the token's permissions, SMTP and IMAP, and says what is missing)`,
  );
  return s.text();
}

function fillMicrosoft(p: GuideInput['profile'], clientId: string | undefined): Profile {
  return {
    capabilities: ['send', 'read'],
    flow: 'browser',
    clientType: 'public',
    scopes: [],
    sasl: 'auto',
    storage: 'auto',
    retry: { mode: 'none', maxAttempts: 1, initialDelayMs: 0, multiplier: 1, maxDelayMs: 0 },
    ...p,
    clientId: clientId ?? 'CLIENT-ID',
  };
}

function googleGuide({ name, profile: p }: GuideInput): string {
  const s = new Steps();
  const flow = p.flow ?? 'browser';
  const redirect = redirectUriFor({ flow, redirectUri: p.redirectUri, redirectPort: p.redirectPort });
  const loopback = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?\/?$/.test(redirect);
  const workspace = p.user && !/@(gmail|googlemail)\.com$/i.test(p.user);

  s.title(`Register the Google Cloud app for profile "${name}"`);
  s.para(
    `Profile: sign-in flow ${flow}` + (p.user ? `, mailbox ${p.user}` : '') + '.',
    'Gmail takes only the scope https://mail.google.com/ for SMTP and IMAP (full mailbox access;',
    "gmail.send is not enough), and Google's device flow does not allow that scope: sign-in is",
    'through a browser, once; afterwards oauthmail refreshes the token on its own.',
  );

  s.step(
    'Create (or pick) a project',
    'https://console.cloud.google.com → project picker at the top → New project → a name of your',
    'choice (users do not see it) → Create, then make sure the new project is selected.',
  );
  s.step('Enable the Gmail API', 'APIs & Services → Library → search "Gmail API" → Enable.');
  s.step(
    'Configure the consent screen',
    'APIs & Services → OAuth consent screen (Google Auth Platform → Branding / Audience / Data access).',
    'App name and support email: shown to the user on the consent page.',
    workspace
      ? `Audience / user type: "Internal" if ${p.user} is in your Google Workspace: no test users, no`
      : 'Audience / user type: "External" for @gmail.com accounts ("Internal" exists only for',
    workspace
      ? '  verification, no 7-day limit. Otherwise "External".'
      : '  Google Workspace organizations).',
    'Data access (Scopes) → Add or remove scopes → "Manually add scopes": https://mail.google.com/',
    '→ Add to table → Update → Save.',
  );
  s.step(
    'Publishing status: mind the 7-day limit',
    'An External app in "Testing" can only be used by its test users (Audience → Test users → Add',
    `users${p.user ? `: ${p.user}` : ''}), and its refresh tokens expire after 7 days: oauthmail then`,
    `exits with code 4 and you must run oauthmail login ${name} again.`,
    'To avoid that, "Publish app" (In production). https://mail.google.com/ is a restricted scope, so',
    "a public app needs Google's verification; for your own use the app still works unverified after a",
    '"Google hasn\'t verified this app" warning (at most 100 users).',
  );
  if (flow === 'service-account') {
    s.step(
      'Create the service account (Google Workspace only)',
      'IAM & Admin → Service accounts → Create; then Keys → Add key → JSON; store it with',
      `  oauthmail profile secret ${name} --service-account-key FILE.json`,
      'A Workspace super admin then grants domain-wide delegation: Admin console → Security → Access and',
      "data control → API controls → Domain-wide delegation → Add new → the service account's client ID",
      '→ OAuth scopes: https://mail.google.com/',
    );
  } else {
    const clientLines = loopback
      ? [
          'APIs & Services → Credentials → Create credentials → OAuth client ID →',
          'Application type: "Desktop app" → a name → Create.',
          `No redirect URI to enter: Desktop clients accept ${redirect} on any port, which oauthmail`,
          'uses when it signs in.',
        ]
      : [
          'APIs & Services → Credentials → Create credentials → OAuth client ID →',
          'Application type: "Web application" → Authorized redirect URIs → Add URI, exactly:',
          `  ${redirect}`,
          '→ Create.',
        ];
    s.step('Create the OAuth client', ...clientLines);
    s.step(
      'Copy the client ID and secret',
      p.clientId
        ? `The client ID must be ${p.clientId} (the profile's clientId).`
        : `oauthmail profile edit ${name} --set clientId=ID.apps.googleusercontent.com`,
      'Google asks for the client secret when a code is redeemed, even for Desktop apps (for them it is',
      `not really secret). Store it, never on the command line: oauthmail profile secret ${name} --stdin`,
    );
  }
  s.step(
    'Check it',
    `oauthmail login ${name}`,
    '  A browser opens and Google asks for consent: allow "Read, compose, send, and permanently',
    '  delete all your email from Gmail".',
    `oauthmail test ${name}`,
    'Gmail also needs IMAP turned on for reading: Gmail settings → Forwarding and POP/IMAP (on by default).',
  );
  return s.text();
}

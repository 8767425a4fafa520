/**
 * The scope catalogue: every scope (or app role) oauthmail asks for, why it needs it, what it
 * lets the app do, and who can grant it. `oauthmail scopes`, `oauthmail guide` and the checks
 * behind `oauthmail test` read it, so that all three say the same thing.
 *
 * Microsoft: the mail protocols take only tokens for Exchange Online (audience
 * https://outlook.office.com). The delegated permission may be registered either under Microsoft
 * Graph → Delegated (where the portal lists SMTP.Send and IMAP.AccessAsUser.All, as the vendors'
 * guides do) or under "APIs my organization uses" → Office 365 Exchange Online → Delegated; either
 * works. What matters is the scope requested, so the token's audience: a token requested for Graph
 * (https://graph.microsoft.com/SMTP.Send) is refused by smtp.office365.com (535 5.7.3).
 * Google: SMTP and IMAP need https://mail.google.com/ (RFC-less, Google's rule); gmail.send is not
 * accepted by SMTP AUTH.
 */
import type { Provider } from '../config/schema.js';

export interface ScopeInfo {
  /** As requested from the identity provider. */
  scope: string;
  provider: Exclude<Provider, 'custom'>;
  /** delegated = on behalf of a signed-in user; application = app-only (client credentials). */
  type: 'delegated' | 'application' | 'oidc';
  /** Why oauthmail asks for it. */
  why: string;
  /** What the app can do with it. */
  allows: string;
  /** Who can grant (consent to) it. */
  grantedBy: string;
  /** The permission's name in the Azure portal / Google console, where it differs. */
  portalName?: string;
  /** The audience (`aud`) of the token the mail server accepts, where it matters. */
  audience?: string;
}

/** Where a delegated Exchange permission may be registered: either place works. */
export function microsoftDelegatedPortal(permission: string): string {
  return (
    `Microsoft Graph → Delegated → ${permission}, or "APIs my organization uses" → ` +
    `Office 365 Exchange Online → Delegated → ${permission} (either registration works)`
  );
}

/** The one sentence on what matters for the Exchange mail scopes: the token's audience. */
export const MICROSOFT_AUDIENCE_NOTE =
  "What matters is the token's audience: oauthmail requests the scope for https://outlook.office.com, " +
  'which SMTP and IMAP accept; a token requested for Microsoft Graph (https://graph.microsoft.com/SMTP.Send) ' +
  'is refused (535 5.7.3).';

const USER_OR_ADMIN =
  'the user, if the tenant lets users consent to apps; otherwise a Global Administrator, Privileged Role Administrator, Cloud Application Administrator or Application Administrator';
const ADMIN_ONLY_APP =
  'only a Global Administrator or Privileged Role Administrator (app roles need admin consent); an Exchange administrator must also register the service principal and grant mailbox access (New-ServicePrincipal, Add-MailboxPermission)';

export const SCOPES: readonly ScopeInfo[] = [
  {
    scope: 'offline_access',
    provider: 'microsoft',
    type: 'oidc',
    why: 'keep the sign-in alive without asking again',
    allows:
      'a refresh token, so new access tokens can be fetched while nobody is at the keyboard (cron jobs)',
    grantedBy: USER_OR_ADMIN,
    portalName: 'Microsoft Graph → Delegated → offline_access',
  },
  {
    scope: 'openid',
    provider: 'microsoft',
    type: 'oidc',
    why: 'know who signed in',
    allows: 'an ID token that names the account; no access to data',
    grantedBy: USER_OR_ADMIN,
    portalName: 'Microsoft Graph → Delegated → openid',
  },
  {
    scope: 'profile',
    provider: 'microsoft',
    type: 'oidc',
    why: 'show the account name in `oauthmail status`',
    allows: "the account's display name and user name in the ID token",
    grantedBy: USER_OR_ADMIN,
    portalName: 'Microsoft Graph → Delegated → profile',
  },
  {
    scope: 'email',
    provider: 'microsoft',
    type: 'oidc',
    why: "know the account's mail address",
    allows: "the account's primary email address in the ID token",
    grantedBy: USER_OR_ADMIN,
    portalName: 'Microsoft Graph → Delegated → email',
  },
  {
    scope: 'https://outlook.office.com/SMTP.Send',
    provider: 'microsoft',
    type: 'delegated',
    why: 'send mail (`oauthmail send`, sendmail mode, the SMTP check of `oauthmail test`)',
    allows:
      'SMTP AUTH to smtp.office365.com as the signed-in user, and as mailboxes it has Send As rights on',
    grantedBy: USER_OR_ADMIN,
    portalName: microsoftDelegatedPortal('SMTP.Send'),
    audience: 'https://outlook.office.com',
  },
  {
    scope: 'https://outlook.office.com/IMAP.AccessAsUser.All',
    provider: 'microsoft',
    type: 'delegated',
    why: 'read mail (`oauthmail fetch`, the IMAP check of `oauthmail test`)',
    allows: 'full IMAP access to the mailboxes the signed-in user can open: read, move and delete mail',
    grantedBy: USER_OR_ADMIN,
    portalName: microsoftDelegatedPortal('IMAP.AccessAsUser.All'),
    audience: 'https://outlook.office.com',
  },
  {
    scope: 'https://outlook.office.com/POP.AccessAsUser.All',
    provider: 'microsoft',
    type: 'delegated',
    why: 'not requested by oauthmail; listed because some apps ask for it',
    allows: "POP3 download (and delete) of the signed-in user's mail",
    grantedBy: USER_OR_ADMIN,
    portalName: microsoftDelegatedPortal('POP.AccessAsUser.All'),
    audience: 'https://outlook.office.com',
  },
  {
    scope: 'https://outlook.office365.com/.default',
    provider: 'microsoft',
    type: 'application',
    why: 'app-only sign-in (flow client-credentials) for daemons with no user',
    allows:
      'whatever application permissions were granted on Office 365 Exchange Online: SMTP.SendAsApp (send) and IMAP.AccessAsApp (read), limited to the mailboxes Exchange lets the app into',
    grantedBy: ADMIN_ONLY_APP,
    portalName:
      'APIs my organization uses → Office 365 Exchange Online → Application permissions → SMTP.SendAsApp, IMAP.AccessAsApp',
  },
  {
    scope: 'https://graph.microsoft.com/Mail.Send',
    provider: 'microsoft',
    type: 'delegated',
    why: 'send mail with transport graph (Microsoft Graph sendMail, for tenants where SMTP AUTH is off)',
    allows:
      'send mail as the signed-in user through Microsoft Graph (Mail.Send.Shared adds mailboxes it has Send As rights on)',
    grantedBy: USER_OR_ADMIN,
    portalName: 'Microsoft Graph → Delegated → Mail.Send',
    audience: 'https://graph.microsoft.com',
  },
  {
    scope: 'https://graph.microsoft.com/Mail.ReadWrite',
    provider: 'microsoft',
    type: 'delegated',
    why: 'transport graph with capability read; also needed to send messages over 4 MB (a draft and upload sessions)',
    allows: "read, create, change and delete the signed-in user's mail through Microsoft Graph",
    grantedBy: USER_OR_ADMIN,
    portalName: 'Microsoft Graph → Delegated → Mail.ReadWrite',
    audience: 'https://graph.microsoft.com',
  },
  {
    scope: 'https://graph.microsoft.com/.default',
    provider: 'microsoft',
    type: 'application',
    why: 'app-only sign-in (flow client-credentials) with transport graph',
    allows:
      'whatever application permissions were granted on Microsoft Graph: Mail.Send (send as any mailbox) and Mail.ReadWrite, for every mailbox unless an Application Access Policy or RBAC for Applications limits the app',
    grantedBy: ADMIN_ONLY_APP.replace(
      '; an Exchange administrator must also register the service principal and grant mailbox access (New-ServicePrincipal, Add-MailboxPermission)',
      '; an Exchange administrator should limit the app to some mailboxes (New-ApplicationAccessPolicy, or RBAC for Applications)',
    ),
    portalName: 'Microsoft Graph → Application permissions → Mail.Send, Mail.ReadWrite',
  },
  {
    scope: 'https://mail.google.com/',
    provider: 'google',
    type: 'delegated',
    why: 'send and read mail over SMTP and IMAP (Gmail accepts no narrower scope for SMTP AUTH)',
    allows: 'full access to the Gmail mailbox: read, send, delete and change settings',
    grantedBy:
      'the user on the consent screen; in Google Workspace an admin can block or pre-approve the app (Admin console → Security → API controls); it is a restricted scope, so a public app needs Google verification',
    portalName: 'Gmail API → https://mail.google.com/',
  },
  {
    scope: 'openid email',
    provider: 'google',
    type: 'oidc',
    why: 'know who signed in',
    allows: "the account's Google ID and email address",
    grantedBy: 'the user on the consent screen',
  },
];

/** Exchange Online app roles (application permissions) and what they allow; checked in `roles`. */
export const MICROSOFT_APP_ROLES: Record<'send' | 'read', string> = {
  send: 'SMTP.SendAsApp',
  read: 'IMAP.AccessAsApp',
};

/** The short permission names in an Exchange token's `scp`, per capability. */
export const MICROSOFT_SCP: Record<'send' | 'read', string> = {
  send: 'SMTP.Send',
  read: 'IMAP.AccessAsUser.All',
};

export function scopesFor(provider?: Exclude<Provider, 'custom'>): ScopeInfo[] {
  return SCOPES.filter((s) => !provider || s.provider === provider);
}

export function scopeInfo(scope: string): ScopeInfo | undefined {
  return SCOPES.find((s) => s.scope === scope);
}

/** The catalogue as text for a terminal: one block per scope. */
export function renderScopes(list: readonly ScopeInfo[]): string {
  const out: string[] = [];
  let last: string | undefined;
  const note = () => {
    if (last === 'microsoft' && list.some((s) => s.audience)) out.push('', `  ${MICROSOFT_AUDIENCE_NOTE}`);
  };
  for (const s of list) {
    if (s.provider !== last) {
      note();
      if (last) out.push('');
      out.push(s.provider === 'microsoft' ? 'Microsoft Entra ID' : 'Google');
      out.push('');
      last = s.provider;
    }
    out.push(`  ${s.scope}  (${s.type})`);
    out.push(`    why:        ${s.why}`);
    out.push(`    allows:     ${s.allows}`);
    out.push(`    granted by: ${s.grantedBy}`);
    if (s.portalName) out.push(`    in portal:  ${s.portalName}`);
    if (s.audience)
      out.push(
        s.audience === 'https://graph.microsoft.com'
          ? `    audience:   ${s.audience} (profile key transport=graph; SMTP and IMAP refuse this token)`
          : `    audience:   ${s.audience} (a token for https://graph.microsoft.com is refused)`,
      );
  }
  note();
  return out.join('\n');
}

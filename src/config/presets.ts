/**
 * What each provider makes standard: endpoints, mail hosts, and the scopes each capability needs.
 *
 * Microsoft: the mail protocols only accept tokens whose audience is Exchange Online
 * (https://outlook.office.com); Graph's `SMTP.Send` is a different permission and its token is
 * refused by smtp.office365.com. App-only access uses the `.default` scope of
 * https://outlook.office365.com with client credentials.
 * Google: SMTP and IMAP need the full `https://mail.google.com/` scope; `gmail.send` is not
 * enough for SMTP AUTH.
 */
import type { Capability, Profile, Provider } from './schema.js';
import { DEFAULT_RETRY } from './schema.js';

export const MICROSOFT_LOGIN_HOST = 'https://login.microsoftonline.com';
export const OUTLOOK_RESOURCE = 'https://outlook.office.com';

export const MICROSOFT_SCOPES: Record<Capability, string> = {
  send: 'https://outlook.office.com/SMTP.Send',
  read: 'https://outlook.office.com/IMAP.AccessAsUser.All',
};
/**
 * Transport graph (Microsoft Graph sendMail, for tenants without SMTP AUTH): the token's audience
 * is https://graph.microsoft.com, so a graph profile asks for Graph scopes only (one token has
 * one audience). Mail.Send sends as the signed-in user; Mail.ReadWrite is for reading and for
 * drafts (messages over Graph's 4 MB request limit go through a draft and upload sessions).
 * App-only: the application permissions granted on Microsoft Graph (Mail.Send, Mail.ReadWrite).
 */
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const GRAPH_SCOPES: Record<Capability, string> = {
  send: `${GRAPH_RESOURCE}/Mail.Send`,
  read: `${GRAPH_RESOURCE}/Mail.ReadWrite`,
};
export const GRAPH_APP_ONLY_SCOPE = `${GRAPH_RESOURCE}/.default`;
export const MICROSOFT_BASE_SCOPES = ['offline_access', 'openid', 'profile', 'email'];
export const MICROSOFT_APP_ONLY_SCOPE = 'https://outlook.office365.com/.default';

export const GOOGLE_MAIL_SCOPE = 'https://mail.google.com/';
export const GOOGLE_AUTH_ENDPOINT = 'https://accounts.google.com/o/oauth2/v2/auth';
export const GOOGLE_TOKEN_ENDPOINT = 'https://oauth2.googleapis.com/token';
export const GOOGLE_REVOKE_ENDPOINT = 'https://oauth2.googleapis.com/revoke';

export interface ProviderPreset {
  smtp?: Profile['smtp'];
  imap?: Profile['imap'];
  tenant?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  revocationEndpoint?: string;
}

export const PRESETS: Record<Provider, ProviderPreset> = {
  microsoft: {
    tenant: 'organizations',
    smtp: { host: 'smtp.office365.com', port: 587, security: 'starttls' },
    imap: { host: 'outlook.office365.com', port: 993, security: 'tls' },
  },
  google: {
    smtp: { host: 'smtp.gmail.com', port: 587, security: 'starttls' },
    imap: { host: 'imap.gmail.com', port: 993, security: 'tls' },
    authorizationEndpoint: GOOGLE_AUTH_ENDPOINT,
    tokenEndpoint: GOOGLE_TOKEN_ENDPOINT,
    revocationEndpoint: GOOGLE_REVOKE_ENDPOINT,
  },
  custom: {},
};

/**
 * The scopes a profile needs for its capabilities, flow and transport (custom providers: none
 * implied).
 */
export function scopesFor(
  provider: Provider,
  capabilities: readonly Capability[],
  flow: Profile['flow'],
  transport?: Profile['transport'],
): string[] {
  if (provider === 'microsoft') {
    const graph = transport === 'graph';
    if (flow === 'client-credentials') return [graph ? GRAPH_APP_ONLY_SCOPE : MICROSOFT_APP_ONLY_SCOPE];
    const byCap = graph ? GRAPH_SCOPES : MICROSOFT_SCOPES;
    return [...capabilities.map((c) => byCap[c]), ...MICROSOFT_BASE_SCOPES];
  }
  if (provider === 'google') return [GOOGLE_MAIL_SCOPE];
  return [];
}

/** The Microsoft authority URL (with trailing slash) a profile signs in against. */
export function microsoftAuthority(p: Pick<Profile, 'authority' | 'tenant'>): string {
  if (p.authority) return p.authority.endsWith('/') ? p.authority : p.authority + '/';
  return `${MICROSOFT_LOGIN_HOST}/${p.tenant ?? 'organizations'}/`;
}

/** A new profile with the provider's defaults; the caller overlays what the user gave. */
export function defaultsFor(provider: Provider): Partial<Profile> {
  const preset = PRESETS[provider];
  const capabilities: Capability[] = ['send', 'read'];
  const base: Partial<Profile> = {
    provider,
    clientType: 'public',
    flow: 'browser',
    capabilities,
    sasl: 'auto',
    retry: { ...DEFAULT_RETRY },
    storage: 'auto',
  };
  if (preset.tenant) base.tenant = preset.tenant;
  if (preset.smtp) base.smtp = { ...preset.smtp };
  if (preset.imap) base.imap = { ...preset.imap };
  if (preset.authorizationEndpoint) base.authorizationEndpoint = preset.authorizationEndpoint;
  if (preset.tokenEndpoint) base.tokenEndpoint = preset.tokenEndpoint;
  if (preset.revocationEndpoint) base.revocationEndpoint = preset.revocationEndpoint;
  return base;
}

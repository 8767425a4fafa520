/**
 * `oauthmail guide` for a custom (standards-based OAuth 2.0 / OpenID Connect) provider: what to
 * register at the provider, with the profile's values. Each provider's console differs, so the
 * steps name the protocol settings (RFC 6749, RFC 7636, RFC 8628, OpenID Connect Core §11), not
 * screens.
 */
import type { GuideInput } from './guide.js';
import { redirectUriFor } from './consent-url.js';

export function customGuide({ name, profile: p }: GuideInput): string {
  const lines: string[] = [];
  let n = 0;
  const step = (head: string, ...body: string[]) => {
    n++;
    lines.push(`${n}. ${head}`, ...body.map((b) => (b ? `   ${b}` : '')), '');
  };
  const title = `Register the OAuth 2.0 client for profile "${name}"`;
  const flow = p.flow ?? 'browser';
  const scopes = p.scopes?.length ? p.scopes : ['(the scopes your mail server checks)'];
  const redirect = redirectUriFor({
    flow,
    provider: 'custom',
    redirectUri: p.redirectUri,
    redirectPort: p.redirectPort,
  });
  const where = p.issuer ?? p.authorizationEndpoint ?? p.tokenEndpoint ?? 'your identity provider';
  lines.push(title, '='.repeat(title.length), '');
  lines.push(
    `Profile: provider custom (${where}), sign-in flow ${flow}${p.user ? `, mailbox ${p.user}` : ''}.`,
    "Every provider's admin console looks different; these are the settings to look for.",
    '',
  );
  step(
    'Create the client (application) at the provider',
    p.clientId
      ? `Its client ID must be ${p.clientId} (the profile's clientId).`
      : `Copy its client ID, then: oauthmail profile edit ${name} --set clientId=THE-ID`,
    'Client type: public (native/desktop) if the provider allows public clients, else confidential:',
    `then store the secret, never on the command line: oauthmail profile secret ${name} --stdin`,
    `and pick how it is sent: client_secret_basic (the default) or --set tokenEndpointAuth=client_secret_post.`,
  );
  step(
    'Allow the grant types',
    'authorization_code (browser sign-in) with PKCE S256 (RFC 7636),',
    'refresh_token (without it the sign-in ends when the first access token expires),',
    'urn:ietf:params:oauth:grant-type:device_code (RFC 8628; only for oauthmail login --device).',
  );
  step(
    'Register the redirect URI',
    `Exactly: ${redirect}`,
    'oauthmail listens there while `oauthmail login` runs. Loopback redirects may use any port',
    '(RFC 8252 §7.3) when the provider implements that rule; otherwise fix the port in the profile',
    `(oauthmail profile edit ${name} --set redirectPort=PORT) and register the same one.`,
  );
  step(
    'Allow the scopes',
    ...scopes.map((s) => `  ${s}`),
    ...(scopes.includes('offline_access')
      ? [
          'offline_access gives the refresh token. OpenID Connect Core §11: the provider ignores it unless',
          `the sign-in asks for consent, so sign in with: oauthmail login ${name} --prompt consent`,
          `(or always: oauthmail profile edit ${name} --set prompt=consent).`,
        ]
      : [
          'If the provider issues refresh tokens only for offline_access, add it:',
          `  oauthmail profile edit ${name} --set scopes="${[...(p.scopes ?? []), 'offline_access'].join(' ')}"`,
        ]),
  );
  step(
    'Consent',
    'OAuth 2.0 has no admin-consent URL: an administrator of the provider may pre-authorize the client',
    '(often called trusted or skip consent); otherwise each user accepts once, when signing in.',
    `The link for the user: oauthmail consent-url ${name}`,
  );
  step(
    'Check it',
    `oauthmail login ${name}${flow === 'device' ? ' --device' : ''}`,
    `oauthmail test ${name}     (checks the token, SMTP and IMAP, and says what is missing)`,
  );
  return lines.join('\n').replace(/\n+$/, '\n');
}

/**
 * The `profile add` wizard: asks, on a terminal, for what the flags did not give.
 * Returns settings; validation happens afterwards exactly as for flags.
 */
import { givesKey as has, sameKey } from '../config/derive.js';
import type { Setting } from '../config/profiles.js';
import { UsageError } from '../errors/index.js';
import type { Io } from './io.js';

export async function runWizard(io: Io, given: readonly Setting[], name = 'NAME'): Promise<Setting[]> {
  const out: Setting[] = [];
  io.err('Creating a profile. Press Enter to accept the [default].');
  let provider = given.find(([k]) => sameKey(k, 'provider'))?.[1];
  if (!provider) {
    provider = await io.prompt('Provider (microsoft, google, custom)', 'microsoft');
    out.push(['provider', provider]);
  }
  if (provider === 'microsoft' && !has(given, 'tenant')) {
    out.push([
      'tenant',
      await io.prompt('Tenant (ID, domain like contoso.com, organizations, common)', 'organizations'),
    ]);
  }
  if (provider === 'custom') {
    if (!has(given, 'authorizationEndpoint'))
      out.push(['authorizationEndpoint', await io.prompt('Authorization endpoint URL')]);
    if (!has(given, 'tokenEndpoint')) out.push(['tokenEndpoint', await io.prompt('Token endpoint URL')]);
    if (!has(given, 'scopes')) out.push(['scopes', await io.prompt('Scopes (space-separated)')]);
  }
  // the right moment for the registration guide: before we ask for an ID the user may not have yet
  if (
    (provider === 'microsoft' || provider === 'google') &&
    !(await io.confirm('Is the app already registered (do you have its client ID)?', true))
  ) {
    const { renderGuide } = await import('../diagnose/guide.js');
    const tenant = [...given, ...out].find(([k]) => sameKey(k, 'tenant'))?.[1];
    io.err('\n' + renderGuide({ name, profile: { provider, ...(tenant ? { tenant } : {}) } }));
    io.err(
      `Register the app as above (later: oauthmail guide ${name} shows it with all of the profile's values), then enter its ID.`,
    );
  }
  io.err(
    provider === 'google'
      ? 'The client ID is on Google Cloud console → APIs & Services → Credentials (an OAuth client of type "Desktop app").'
      : provider === 'microsoft'
        ? 'The client ID is the "Application (client) ID" on Azure portal → App registrations → your app → Overview.'
        : '',
  );
  const clientId = await io.prompt('Client ID');
  if (!clientId) {
    // no ID yet (the app is being registered): nothing to save, but everything to finish with
    const q = (v: string) => (/^[\w@.:/+-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
    const sets = [...given, ...out]
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `--set ${k}=${q(v!)}`);
    throw new UsageError(`no client ID given, so the profile ${name} was not saved`, {
      code: 'wizard_no_client_id',
      hint: `once the app is registered: oauthmail profile add ${name} ${[...sets, '--client-id ID'].join(' ')}`,
    });
  }
  out.push(['clientId', clientId]);
  if (!has(given, 'user')) {
    const user = await io.prompt('Mailbox address (the account whose mail you send and read)');
    if (user) out.push(['user', user]);
  }
  if (!has(given, 'flow') && provider !== 'google') {
    out.push(['flow', await io.prompt('Sign-in flow (browser, device, client-credentials)', 'browser')]);
  }
  if (!has(given, 'clientType')) {
    const t = await io.prompt('App type: public (no secret), secret, certificate', 'public');
    out.push(['clientType', t]);
  }
  return out;
}

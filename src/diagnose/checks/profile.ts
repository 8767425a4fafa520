/** Check 1, profile: the profile is complete and consistent (scopes, audience, credentials, servers). */
import {
  MICROSOFT_APP_ONLY_SCOPE,
  MICROSOFT_SCOPES,
  GOOGLE_MAIL_SCOPE,
} from '../../config/presets.js';
import { Fail, type CheckResult, type Ctx } from './types.js';

export const GRAPH = 'https://graph.microsoft.com';

export async function checkProfile(c: Ctx, r: CheckResult): Promise<string> {
  const { name, profile: p } = c.deps;
  const edit = (kv: string) => `oauthmail profile edit ${name} --set ${kv}`;
  r.details = {
    provider: p.provider,
    flow: p.flow,
    clientType: p.clientType,
    capabilities: p.capabilities,
    scopes: p.scopes,
    user: p.user ?? null,
  };
  if (!p.user)
    throw new Fail(`profile ${name} has no mailbox user`, 'config', edit('user=you@example.com'), 'no_user');
  if (!p.capabilities.length)
    throw new Fail(
      'the profile has no capabilities (send, read)',
      'config',
      edit('capabilities=send,read'),
      'no_capabilities',
    );
  for (const [cap, verb, server, security] of [
    ['send', 'sends', 'smtp', 'starttls'],
    ['read', 'reads', 'imap', 'tls'],
  ] as const) {
    if (p.capabilities.includes(cap) && !p[server]) {
      throw new Fail(
        `the profile ${verb} but has no ${server.toUpperCase()} server`,
        'config',
        `oauthmail profile edit ${name} --${server} HOST:PORT --${server}-security ${security}`,
        `no_${server}`,
      );
    }
  }
  if (
    p.flow === 'client-credentials' &&
    c.deps.hasCredential &&
    !c.deps.token &&
    !(await c.deps.hasCredential())
  ) {
    throw new Fail(
      `a client-credentials profile needs its client ${p.clientType === 'certificate' ? 'certificate' : 'secret'}, and none is stored`,
      'config',
      p.clientType === 'certificate'
        ? `oauthmail profile secret ${name} --certificate FILE.pem`
        : `oauthmail profile secret ${name} --stdin`,
      'no_credential',
    );
  }
  const scopes = p.scopes;
  if (p.provider === 'microsoft') {
    const graphish = scopes.filter(
      (s) =>
        /^(SMTP\.Send|IMAP\.AccessAsUser\.All|POP\.AccessAsUser\.All|Mail\.\w+)$/.test(s) ||
        s.startsWith(GRAPH),
    );
    if (graphish.length) {
      const fixed = scopes.map((s) => {
        const bare = s.replace(`${GRAPH}/`, '');
        return bare === 'SMTP.Send' || bare === 'IMAP.AccessAsUser.All' || bare === 'POP.AccessAsUser.All'
          ? `https://outlook.office.com/${bare}`
          : s;
      });
      throw new Fail(
        `scopes ${graphish.join(', ')} ask Microsoft Graph for the token; the SMTP and IMAP servers refuse Graph tokens`,
        'config',
        `${edit(`scopes="${fixed.filter((s) => !s.startsWith('Mail.')).join(' ')}"`)}, then: oauthmail login ${name}`,
        'graph_scopes',
      );
    }
    if (p.flow === 'client-credentials') {
      if (!scopes.includes(MICROSOFT_APP_ONLY_SCOPE)) {
        throw new Fail(
          `an app-only profile must ask for ${MICROSOFT_APP_ONLY_SCOPE}`,
          'config',
          edit(`scopes=${MICROSOFT_APP_ONLY_SCOPE}`),
          'app_only_scope',
        );
      }
    } else {
      for (const cap of p.capabilities) {
        const want = MICROSOFT_SCOPES[cap];
        if (!scopes.includes(want)) {
          throw new Fail(
            `the profile ${cap === 'send' ? 'sends' : 'reads'} but does not ask for ${want}`,
            'config',
            `${edit(`scopes="${[...scopes, want].join(' ')}"`)}, then: oauthmail login ${name}`,
            'missing_scope',
          );
        }
      }
      if (!scopes.includes('offline_access')) {
        r.warnings.push(
          `no offline_access scope: the sign-in cannot be refreshed and ends with the access token (about an hour)`,
        );
      }
    }
  } else if (p.provider === 'google') {
    if (!scopes.includes(GOOGLE_MAIL_SCOPE)) {
      const hasSend = scopes.some((s) => s.includes('gmail.send'));
      throw new Fail(
        `a Google profile must ask for ${GOOGLE_MAIL_SCOPE}${hasSend ? ' (gmail.send is not accepted by SMTP AUTH)' : ''}`,
        'config',
        `${edit(`scopes=${GOOGLE_MAIL_SCOPE}`)}, then: oauthmail login ${name}`,
        'missing_scope',
      );
    }
  }
  for (const [which, s] of [
    ['smtp', p.smtp],
    ['imap', p.imap],
  ] as const) {
    if (s && s.security === 'none' && !/^(localhost|127\.[\d.]+|::1|\[::1\])$/i.test(s.host)) {
      throw new Fail(
        `${which} security is "none" for ${s.host}: the token would travel in clear text`,
        'config',
        `oauthmail profile edit ${name} --${which}-security ${which === 'smtp' ? 'starttls' : 'tls'}`,
        'tls_required',
      );
    }
  }
  if (p.clientSecretExpires) {
    const days = Math.floor(
      (Date.parse(p.clientSecretExpires + 'T00:00:00Z') - (c.deps.now?.() ?? new Date()).getTime()) /
        86_400_000,
    );
    if (days < 0) r.warnings.push(`the client secret expired on ${p.clientSecretExpires}`);
    else if (days <= 30)
      r.warnings.push(`the client secret expires in ${days} day(s), on ${p.clientSecretExpires}`);
  }
  return `${p.provider} profile, flow ${p.flow}, ${p.capabilities.join(' + ')}, mailbox ${p.user}`;
}


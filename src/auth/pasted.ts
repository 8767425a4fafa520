/**
 * `login --paste`: what the person pasted, the address the browser ended on (query or fragment)
 * or a bare authorization code. The state of a pasted URL must match (RFC 6749 §10.12); a bare
 * code carries no state, but PKCE (RFC 7636) still binds it to this process's verifier.
 */
import type { AuthorizationResponse } from './loopback.js';

/** A pasted redirect URL (query or fragment) or a bare authorization code. */
export function parsePasted(text: string): AuthorizationResponse | undefined {
  const t = text.trim().replace(/^["'<]|[">']$/g, '');
  if (!t) return undefined;
  if (/^https?:\/\//i.test(t) || /[?#&]?(code|error)=/.test(t)) {
    let params: URLSearchParams;
    try {
      const u = new URL(t, 'http://localhost/');
      params = new URLSearchParams(u.search || u.hash.replace(/^#/, ''));
      if (!params.has('code') && !params.has('error') && u.hash)
        params = new URLSearchParams(u.hash.slice(1));
    } catch {
      params = new URLSearchParams(t.replace(/^[?#]/, ''));
    }
    const get = (k: string) => params.get(k) ?? undefined;
    const p: AuthorizationResponse = {
      code: get('code'),
      state: get('state'),
      client_info: get('client_info'),
      error: get('error'),
      error_description: get('error_description'),
      error_codes: get('error_codes'),
      suberror: get('suberror'),
    };
    if (!p.code && !p.error) return undefined;
    // a URL always names its state: a missing one is a mismatch, not a bare code
    if (p.code && p.state === undefined) p.state = '';
    return p;
  }
  if (/^[\w.\-~]+$/.test(t)) return { code: t };
  return undefined;
}

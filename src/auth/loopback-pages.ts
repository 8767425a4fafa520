/**
 * The pages the loopback listener (loopback.ts) serves to the browser at the end of a sign-in:
 * success (only once the tokens are stored), the real error (from the identity provider, or from
 * the token exchange and store), and "still finishing" when that takes too long.
 */
import { isOauthmailError } from '../errors/index.js';
import { redact } from '../util/redact.js';

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}h1{font-size:1.4rem}code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}';

const head = (title: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>oauthmail: ${title}</title><style>${STYLE}</style></head>`;

export function successPage(profile: string, account?: string | null): string {
  return `${head('signed in')}
<body><main id="oauthmail-success" data-result="success"><h1>Signed in${account ? ` as ${esc(account)}` : ''}</h1>
<p>oauthmail stored the sign-in for profile <code>${esc(profile)}</code>. You can close this tab and go back to the terminal.</p></main></body></html>`;
}

export function errorPage(info: { code?: string; error?: string; message: string; hint?: string }): string {
  return `${head('sign-in failed')}
<body><main id="oauthmail-error" data-result="error" data-error="${esc(info.error ?? '')}" data-error-code="${esc(info.code ?? '')}">
<h1>Sign-in failed${info.code ? ` (AADSTS${esc(info.code)})` : info.error ? ` (${esc(info.error)})` : ''}</h1>
<p>${esc(info.message.charAt(0).toUpperCase() + info.message.slice(1))}.</p>
${info.hint ? `<p><strong>What to do:</strong> ${esc(info.hint)}</p>` : ''}
<p>The terminal shows the same message. You can close this tab.</p></main></body></html>`;
}

/** The error thrown by the token exchange or the store, as the terminal shows it (redacted). */
export function failurePage(e: unknown): string {
  if (isOauthmailError(e)) {
    const code = /^AADSTS(\d+)$/.exec(e.code)?.[1];
    return errorPage({
      code,
      message: redact(e.message.replace(/ \(AADSTS\d+\)$/, '')),
      hint: e.hint ? redact(e.hint) : undefined,
    });
  }
  return errorPage({
    message: 'the sign-in could not be finished',
    hint: 'see the terminal: it shows what went wrong',
  });
}

/** The token exchange and store took longer than the browser is kept waiting. */
export function pendingPage(profile: string): string {
  return `${head('finishing the sign-in')}
<body><main id="oauthmail-pending" data-result="pending"><h1>Finishing the sign-in…</h1>
<p>oauthmail received the sign-in for profile <code>${esc(profile)}</code> and is still redeeming and storing it. The terminal shows whether it worked. You can close this tab.</p></main></body></html>`;
}

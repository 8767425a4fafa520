/** Plain OAuth 2.0 HTTP for the stored-token providers: a network failure named, a form POST. */
import { TransientError } from '../errors/index.js';
import { oauthError, type OAuthErrorContext } from './errors/google-errors.js';
import { networkErrorCode } from './http-retry.js';

export function networkError(url: string, e: unknown): TransientError {
  const c =
    (e as { cause?: { code?: string }; code?: string })?.cause?.code ?? (e as { code?: string })?.code;
  return new TransientError(
    `cannot reach the identity provider at ${new URL(url).host}${c ? ` (${c})` : ''}`,
    {
      code: 'network_error',
      hint: 'check the network (and a proxy or firewall); exit code 6 is safe to retry',
      cause: e,
    },
  );
}

export function isNetworkError(e: unknown): boolean {
  return networkErrorCode(e) !== undefined;
}

/** An RFC 6749 §5.2 error body read from a response that failed (or an HTML page: the status says enough). */
export async function errorBody(
  res: Response,
): Promise<{ error?: string; error_description?: string; status: number }> {
  const text = await res.text().catch(() => '');
  let body: { error?: unknown; error_description?: unknown } = {};
  try {
    body = (text ? JSON.parse(text) : {}) as typeof body;
  } catch {
    // not JSON (an HTML error page from a proxy)
  }
  return {
    ...(typeof body?.error === 'string' ? { error: body.error } : {}),
    ...(typeof body?.error_description === 'string' ? { error_description: body.error_description } : {}),
    status: res.status,
  };
}

/**
 * POST a form to a token-style endpoint with `http` (a retryingFetch: it logs each call with
 * --verbose); OAuth errors (RFC 6749 §5.2) are mapped with ctx.
 */
export async function postForm(
  url: string,
  form: Record<string, string>,
  ctx: OAuthErrorContext,
  http: typeof fetch,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await http(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...headers,
      },
      body: new URLSearchParams(form).toString(),
    });
  } catch (e) {
    throw networkError(url, e);
  }
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  if (!res.ok || typeof body.error === 'string') {
    throw oauthError(
      {
        error: typeof body.error === 'string' ? body.error : undefined,
        error_description: typeof body.error_description === 'string' ? body.error_description : undefined,
        status: res.status,
      },
      ctx,
    );
  }
  return body;
}

/** The secrets `profile add` and `profile secret` take: never from argv, always checked before storing. */
import { promises as fsp } from 'node:fs';
import type { Profile } from '../../../config/schema.js';
import { UsageError } from '../../../errors/index.js';
import type { SecretKind } from '../../../secrets/types.js';
import type { Context } from '../../context.js';

export function needsSecret(p: Profile): SecretKind | undefined {
  if (p.flow === 'service-account') return 'service-account';
  if (p.clientType === 'secret') return 'client-secret';
  if (p.clientType === 'certificate') return 'certificate';
  return undefined;
}

/** Get a client secret without argv: stdin, then OAUTHMAIL_CLIENT_SECRET, then a hidden prompt. */
export async function readClientSecret(ctx: Context, fromStdin: boolean): Promise<string | undefined> {
  if (fromStdin) {
    const s = (await ctx.io.readStdin()).replace(/\r?\n$/, '');
    if (!s)
      throw new UsageError('--client-secret-stdin: stdin was empty', {
        code: 'bad_input',
        hint: 'pipe the secret in: printf %s "$SECRET" | oauthmail ...',
      });
    return s;
  }
  const env = ctx.env.OAUTHMAIL_CLIENT_SECRET;
  if (env) return env;
  if (!ctx.io.interactive) return undefined;
  for (;;) {
    const a = await ctx.io.promptHidden('Client secret (input hidden)');
    if (!a) return undefined;
    const b = await ctx.io.promptHidden('Client secret again');
    if (a === b) return a;
    ctx.io.err('The two entries differ; try again (or press Enter to skip).');
  }
}

/** A certificate (PEM private key) or a Google service-account key, read from a file and checked. */
export async function readSecretFile(file: string, kind: SecretKind): Promise<string> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      {
        code: 'bad_input',
      },
    );
  }
  if (kind === 'certificate' && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new UsageError(`${file} holds no PEM private key`, {
      code: 'bad_input',
      hint: 'give a PEM file with the private key (and certificate), e.g. from openssl pkcs12 -nodes',
    });
  }
  if (kind === 'service-account') {
    try {
      const j = JSON.parse(text) as { type?: string; private_key?: string; client_email?: string };
      if (j.type !== 'service_account' || !j.private_key || !j.client_email) throw new Error('shape');
    } catch {
      throw new UsageError(`${file} is not a Google service-account JSON key`, {
        code: 'bad_input',
        hint: 'download a JSON key for the service account in the Google Cloud console (IAM → Service accounts → Keys)',
      });
    }
  }
  return text;
}

/** Keep a secret out of every message from now on, then store it. */
export async function storeSecret(
  ctx: Context,
  p: Pick<Profile, 'storage'>,
  name: string,
  kind: SecretKind,
  value: string,
) {
  const { registerSecret } = await import('../../../util/redact.js');
  registerSecret(value);
  const store = await ctx.secretsFor(p);
  await store.set(name, kind, value);
  return store;
}

/**
 * `oauthmail import PROFILE --file F`: take a token file of the common shape
 * {access_token, refresh_token, expires_in} written by another tool, redeem the refresh token
 * and store the result. The file is read, never echoed.
 */
import type { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import { UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import type { TokenFile } from '../../auth/types.js';

export interface ImportOptions {
  profile: string | undefined;
  /** The token file, "-" for stdin. */
  file: string;
  json: boolean;
}

export function importOptions(
  args: { profile?: string | undefined },
  flags: { file: string },
  globals: GlobalOptions,
): ImportOptions {
  if (!flags.file) throw new UsageError('give --file FILE ("-" for stdin)', { code: 'bad_usage' });
  return { profile: args.profile ?? globals.profile, file: flags.file, json: !!globals.json };
}

export async function runImport(o: ImportOptions, ctx: Context): Promise<void> {
  let text: string;
  try {
    text = o.file === '-' ? await ctx.io.readStdin() : await fsp.readFile(o.file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `cannot read ${o.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      { code: 'bad_input' },
    );
  }
  let file: TokenFile;
  try {
    const j: unknown = JSON.parse(text);
    if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('not an object');
    file = j;
  } catch {
    // do not quote the file: it holds secrets
    throw new UsageError(`${o.file} is not a JSON token file`, {
      code: 'bad_input',
      hint: 'expected {"access_token": "...", "refresh_token": "...", "expires_in": 3599}',
    });
  }
  // wrong types are bad input, before any network call (a number as refresh_token would
  // otherwise reach the identity provider)
  for (const [k, type] of [
    ['refresh_token', 'string'],
    ['access_token', 'string'],
  ] as const) {
    const v = (file as unknown as Record<string, unknown>)[k];
    if (v !== undefined && v !== null && typeof v !== type)
      throw new UsageError(`${o.file}: ${k} must be a ${type}`, {
        code: 'bad_input',
        hint: 'expected {"access_token": "...", "refresh_token": "...", "expires_in": 3599}',
      });
  }
  const { registerSecret } = await import('../../util/redact.js');
  registerSecret(file.refresh_token);
  registerSecret(file.access_token);
  const { resolveProvider } = await import('../../auth/index.js');
  const { name, provider } = await resolveProvider(ctx, o.profile);
  const t = await provider.importRefreshToken(file);
  if (o.json)
    ctx.io.outJson({
      profile: name,
      account: t.account,
      expiresOn: t.expiresOn?.toISOString() ?? null,
      scopes: t.scopes,
    });
  ctx.io.err(
    `Imported the sign-in${t.account ? ` of ${t.account}` : ''} into ${name}; the refresh token in ${o.file} has been used and may no longer work.`,
  );
}

export function registerImport(program: Command, ctx: Context, runF = runImport): void {
  program
    .command('import [profile]')
    .description('import a refresh token from a JSON token file ({access_token, refresh_token, expires_in})')
    .requiredOption('--file <file>', 'token file to read ("-" for stdin)')
    .action((profile: string | undefined, flags: { file: string }, cmd: Command) =>
      runF(importOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

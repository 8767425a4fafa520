/**
 * The profile add wizard, in-process with scripted answers: the guide it shows names the profile
 * being made (not "NAME"), and without a client ID it says the profile was not saved and gives the
 * whole command to finish with, instead of failing on an empty ID.
 */
import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { Io } from '../../src/cli/io.js';
import { runWizard } from '../../src/cli/wizard.js';
import { isOauthmailError } from '../../src/errors/index.js';

class ScriptedIo extends Io {
  text = '';
  constructor(private readonly answers: string[]) {
    const err = new PassThrough();
    super({ stdin: new PassThrough(), stdout: new PassThrough(), stderr: err, env: {} });
    err.on('data', (d: Buffer) => (this.text += d.toString()));
  }
  override get interactive(): boolean {
    return true;
  }
  override prompt(question: string, def?: string): Promise<string> {
    this.text += `${question}\n`;
    return Promise.resolve(this.answers.shift() || def || '');
  }
}

describe('profile add wizard', () => {
  it('"not registered yet": the guide names the profile; no client ID: not saved, the command to finish', async () => {
    // provider, tenant, "already registered?" no, client ID empty
    const io = new ScriptedIo(['microsoft', 'contoso.com', 'n', '']);
    const e = await runWizard(io, [['user', 'me@contoso.com']], 'work').catch((x: unknown) => x);
    expect(io.text).toMatch(/oauthmail guide work/);
    expect(io.text).not.toMatch(/\bNAME\b/);
    expect(isOauthmailError(e) && e.exitCode).toBe(2);
    const err = e as { message: string; hint: string };
    expect(err.message).toBe('no client ID given, so the profile work was not saved');
    expect(err.hint).toBe(
      'once the app is registered: oauthmail profile add work --set user=me@contoso.com --set provider=microsoft --set tenant=contoso.com --client-id ID',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { fixText } from '../../src/cli/commands/status.js';

describe('status: how a fix is printed', () => {
  it('a command gets "run", a sentence does not ("run publish the app" before)', () => {
    expect(fixText('oauthmail login work')).toBe('run oauthmail login work');
    expect(
      fixText(
        'publish the app (Google Cloud console → OAuth consent screen → Publish app), then oauthmail login g',
      ),
    ).toBe(
      'publish the app (Google Cloud console → OAuth consent screen → Publish app), then oauthmail login g',
    );
  });
});

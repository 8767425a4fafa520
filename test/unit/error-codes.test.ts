/**
 * The catalogue of error codes (src/errors/codes.ts): one entry per code, each usable in the
 * `oauthmail test` report (its schema's pattern), the codes the report's schema names as examples
 * among them; and the type: a literal that is not in the catalogue does not compile.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ERROR_CODES,
  ConfigError,
  isKnownErrorCode,
  providerCode,
  type ErrorCode,
} from '../../src/errors/index.js';

describe('error codes', () => {
  it('each code once, each matching the report schema pattern; the schema examples are codes', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    for (const c of ERROR_CODES) expect(c).toMatch(/^[a-z][a-z0-9_]*$/);
    const schema = readFileSync(
      path.join(import.meta.dirname, '..', '..', 'docs', 'test-report.schema.json'),
      'utf8',
    );
    for (const c of ['missing_scope', 'graph_audience', 'smtp_auth_refused', 'smtp_no_oauth', 'tls_verify']) {
      expect(schema).toContain(c);
      expect(isKnownErrorCode(c)).toBe(true);
    }
    expect(isKnownErrorCode('AADSTS65001')).toBe(false);
  });

  it('provider codes pass through as they are; an unknown literal is a type error', () => {
    const aad: ErrorCode = 'AADSTS65001';
    expect(new ConfigError('x', { code: aad }).code).toBe('AADSTS65001');
    expect(new ConfigError('x', { code: providerCode('invalid_dpop_proof') }).code).toBe(
      'invalid_dpop_proof',
    );
    // @ts-expect-error: not in the catalogue
    const typo: ErrorCode = 'profile_not_fund';
    expect(isKnownErrorCode(typo)).toBe(false);
  });
});

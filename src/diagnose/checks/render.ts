/** The report of `oauthmail test` for a terminal. */
import { redact } from '../../util/redact.js';
import type { TestReport } from './types.js';

/** The report for a terminal: one line per check, the fix under each failure. */
export function renderReport(rep: TestReport): string {
  const out: string[] = [];
  for (const ch of rep.checks) {
    const tag = ch.status === 'pass' ? 'PASS' : ch.status === 'fail' ? 'FAIL' : 'SKIP';
    out.push(`${tag}  ${ch.id.padEnd(9)}${ch.summary}`);
    for (const w of ch.warnings) out.push(`      warning: ${w}`);
    if (ch.status === 'fail') {
      if (ch.fix) out.push(`      fix: ${ch.fix}`);
      out.push(`      (${ch.kind} failure, exit ${ch.exitCode}${ch.code ? `, ${ch.code}` : ''})`);
    }
  }
  const failed = rep.checks.filter((x) => x.status === 'fail').length;
  out.push('');
  out.push(
    rep.ok
      ? `all checks passed for profile ${rep.profile}`
      : `${failed} check${failed > 1 ? 's' : ''} failed for profile ${rep.profile} (exit ${rep.exitCode})`,
  );
  return redact(out.join('\n'));
}

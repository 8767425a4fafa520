/**
 * Every `oauthmail ...` command that the code can print (hints, help text, messages) names a real
 * command and only options that command (or the root) has. Hints like `profile edit NAME --imap
 * HOST:PORT` once pointed at flags that did not exist. The commands are found in the source text
 * of src/ and checked against the real commander program tree (no action runs).
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import type { Context } from '../../src/cli/context.js';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const program = buildProgram({
  io: { stdout: process.stdout, stderr: process.stderr },
} as unknown as Context);
const top = new Map(program.commands.map((c) => [c.name(), c]));

const longFlags = (c: Command) =>
  new Set(
    c.options.flatMap((o) => [o.long, o.negate ? undefined : `--no-${o.long?.slice(2)}`]).filter(Boolean),
  );

/** The commands printed by src/: "oauthmail <known command> ...", up to the end of the sentence. */
function printedCommands(): Array<{ where: string; text: string }> {
  const out: Array<{ where: string; text: string }> = [];
  for (const file of files(SRC)) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/oauthmail ((?:help|[a-z][a-z-]*)\b[^`'"\n]*)/g)) {
      const first = m[1]!.split(' ')[0]!;
      if (!top.has(first) && first !== 'help') continue;
      // one command: up to a sentence break; placeholders become a value
      // a placeholder inside a flag (`--${which}-security`) stands for any option name
      const text = m[1]!
        .replace(/--\$\{[^}]*\}/g, '--*')
        .replace(/\$\{[^}]*\}/g, 'work')
        .split(/[,;)]\s|\s\(|\s+(?:and|or|then)\s|\.\s|\)$|\\n|\s\|/)[0]!
        .trim();
      const line = src.slice(0, m.index).split('\n').length;
      out.push({ where: `${path.relative(SRC, file)}:${line}`, text });
    }
  }
  return out;
}

describe('every oauthmail command the code prints parses', () => {
  const found = printedCommands();
  it('finds the hints (the scan works)', () => {
    expect(found.length).toBeGreaterThan(30);
    expect(found.some((f) => f.text.startsWith('profile edit'))).toBe(true);
  });

  it.each(found.map((f) => [f.where, f.text]))('%s: oauthmail %s', (_where, text) => {
    const words = text.split(/\s+/);
    if (words[0] === 'help') return; // `oauthmail help exit-codes`: a help topic
    let cmd: Command = top.get(words[0]!)!;
    let i = 1;
    for (; i < words.length; i++) {
      const sub = cmd.commands.find((c) => c.name() === words[i] || c.aliases().includes(words[i]!));
      if (!sub) break;
      cmd = sub;
    }
    // sendmail parses sendmail's own flags (-t, -i, -f ...), not commander's
    if (cmd.name() === 'sendmail') return;
    const allowed = new Set([...longFlags(cmd), ...longFlags(program), '--help']);
    const short = new Set(
      [...cmd.options, ...program.options].map((o) => o.short).filter((x): x is string => !!x),
    );
    for (const raw of words.slice(i)) {
      const w = raw.replace(/[).,:]+$/, '');
      if (w === '--') break; // what follows is the user's command (exec)
      if (/[[\]]/.test(w)) continue; // usage syntax: [-p PROFILE]
      if (w.startsWith('--')) {
        const name = w.split('=')[0]!;
        const re = new RegExp(`^${name.replace(/[.+?^$()|]/g, '\\$&').replace(/\*/g, '[a-z-]+')}$`);
        expect(
          [...allowed].some((a) => re.test(a!)),
          `${text}: ${w} is not an option of ${cmd.name()}`,
        ).toBe(true);
      } else if (/^-[a-zA-Z]$/.test(w)) expect(short, `${text}: ${w}`).toContain(w);
    }
  });
});

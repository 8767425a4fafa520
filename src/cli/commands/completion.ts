/**
 * `oauthmail completion bash|zsh|fish`: a shell completion script. The script asks
 * `oauthmail __complete` (hidden) for the candidates, with the words of the command line in
 * OAUTHMAIL_COMPLETE_WORDS (one per line, the last being the word under the cursor), so that
 * commands, flags and profile names always match this version and this config (cobra's
 * `__complete`, as gh uses it). Candidates come from the command tree itself; profile names from
 * the config file, read without opening any secret store.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context } from '../context.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

export interface CompletionOptions {
  shell: Shell;
}

export function completionOptions(shell: string | undefined): CompletionOptions {
  if (!shell || !(SHELLS as readonly string[]).includes(shell)) {
    throw new UsageError(
      `completion needs a shell: ${SHELLS.join(', ')}${shell ? ` (got ${JSON.stringify(shell)})` : ''}`,
      {
        code: 'bad_usage',
        hint: 'bash: source <(oauthmail completion bash)   zsh: source <(oauthmail completion zsh)   fish: oauthmail completion fish | source',
      },
    );
  }
  return { shell: shell as Shell };
}

const SCRIPTS: Record<Shell, string> = {
  bash: `# oauthmail completion for bash: source <(oauthmail completion bash)
_oauthmail() {
  local IFS=$'\\n'
  local words
  printf -v words '%s\\n' "\${COMP_WORDS[@]:1:COMP_CWORD}"
  words=\${words%$'\\n'}
  COMPREPLY=($(OAUTHMAIL_COMPLETE_WORDS="$words" oauthmail __complete 2>/dev/null))
}
complete -o default -F _oauthmail oauthmail
`,
  zsh: `#compdef oauthmail
# oauthmail completion for zsh: source <(oauthmail completion zsh) (after compinit)
_oauthmail() {
  local -a items
  items=("\${(@f)$(OAUTHMAIL_COMPLETE_WORDS="\${(pj:\\n:)words[2,CURRENT]}" oauthmail __complete 2>/dev/null)}")
  compadd -- "\${items[@]}"
}
if (( $+functions[compdef] )); then compdef _oauthmail oauthmail; fi
`,
  fish: `# oauthmail completion for fish: oauthmail completion fish | source
function __oauthmail_complete
    set -l words (commandline -opc)[2..-1] (commandline -ct)
    OAUTHMAIL_COMPLETE_WORDS=(string join \\n -- $words | string collect) oauthmail __complete 2>/dev/null
end
complete -c oauthmail -f -a '(__oauthmail_complete)'
`,
};

export async function runCompletion(o: CompletionOptions, ctx: Context): Promise<void> {
  await Promise.resolve();
  ctx.io.stdout.write(SCRIPTS[o.shell]);
}

/** Flags that take the next word as their value, per command (commander's own definitions). */
const takesValue = (cmd: Command, flag: string) =>
  cmd.options.some((o) => (o.long === flag || o.short === flag) && (o.required || o.optional));

const takesProfile = (cmd: Command) =>
  /^\[profile\]|^<profile>/.test(cmd.usage().replace(/^\[options\] /, ''));

/** The candidates for the last of `words` (the word under the cursor), given the ones before it. */
export function candidates(program: Command, words: string[], profiles: string[]): string[] {
  const cur = words[words.length - 1] ?? '';
  let cmd = program;
  let positional = 0;
  let prev: string | undefined;
  for (const w of words.slice(0, -1)) {
    const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
    if (prev && (takesValue(cmd, prev) || takesValue(program, prev))) {
      prev = undefined;
      continue;
    }
    if (sub && positional === 0) cmd = sub;
    else if (!w.startsWith('-')) positional++;
    prev = w.startsWith('-') ? w : undefined;
  }
  const pick = (xs: string[]) => xs.filter((x) => x.startsWith(cur)).sort();
  if (prev === '-p' || prev === '--profile') return pick(profiles);
  if (prev && (takesValue(cmd, prev) || takesValue(program, prev))) return [];
  if (cur.startsWith('-')) {
    const flags = [...cmd.options, ...(cmd === program ? [] : program.options)].flatMap((o) =>
      o.long ? [o.long] : [],
    );
    return pick(flags);
  }
  const subs = cmd.commands.filter((c) => !c.name().startsWith('_')).map((c) => c.name());
  if (subs.length && positional === 0) return pick(subs);
  if (positional === 0 && takesProfile(cmd)) return pick(profiles);
  return [];
}

export function registerCompletion(program: Command, ctx: Context, runF = runCompletion): void {
  program
    .command('completion [shell]')
    .description('print a completion script for bash, zsh or fish (commands, flags, profile names)')
    .addHelpText(
      'after',
      `
Examples:
  $ source <(oauthmail completion bash)            # in ~/.bashrc
  $ source <(oauthmail completion zsh)             # in ~/.zshrc, after compinit
  $ oauthmail completion fish > ~/.config/fish/completions/oauthmail.fish`,
    )
    .action((shell: string | undefined) => runF(completionOptions(shell), ctx));

  program
    .command('__complete', { hidden: true })
    .description('candidates for the shell completion scripts (words in OAUTHMAIL_COMPLETE_WORDS)')
    .action(async () => {
      const words = (ctx.env.OAUTHMAIL_COMPLETE_WORDS ?? '').split('\n');
      let profiles: string[] = [];
      try {
        profiles = Object.keys((await ctx.config.load()).profiles);
      } catch {
        // no or unreadable config: no profile names, the rest still completes
      }
      for (const c of candidates(program, words, profiles)) ctx.io.stdout.write(`${c}\n`);
    });
}

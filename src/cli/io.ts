/**
 * Terminal I/O: stdout is for data only (a token, JSON, a listing); everything a person reads
 * (prompts, progress, warnings, hints) goes to stderr. Prompts happen only in an interactive
 * session: stdin and stdout are TTYs, --no-input was not given, and CI is not set. Anything
 * written to stderr goes through redact(), so a secret that slipped into a message is masked.
 */
import { createInterface } from 'node:readline';
import { PassThrough, Readable, Writable } from 'node:stream';
import { AuthError, UsageError } from '../errors/index.js';
import { redact } from '../util/redact.js';

export type InStream = Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
export type OutStream = Writable & { isTTY?: boolean; columns?: number };

export interface IoOptions {
  stdin: InStream;
  stdout: OutStream;
  stderr: OutStream;
  env: NodeJS.ProcessEnv;
  noInput?: boolean;
  verbose?: boolean;
  json?: boolean;
}

/** Memory streams of Io.Test(): what a command wrote, as text. */
export interface TestStreams {
  io: Io;
  stdin: InStream;
  stdout: OutStream;
  stderr: OutStream;
  out(): string;
  err(): string;
}

function memoryOut(tty: boolean): OutStream & { text(): string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      cb();
    },
  }) as OutStream & { text(): string };
  if (tty) {
    w.isTTY = true;
    w.columns = 80;
  }
  w.text = () => Buffer.concat(chunks).toString('utf8');
  return w;
}

export class Io {
  /** The process's own streams and environment (what bin/oauthmail.js runs with). */
  static System(o: Partial<IoOptions> = {}): Io {
    return new Io({
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      ...o,
    });
  }

  /**
   * Memory streams for in-process tests (as gh's iostreams.Test()): stdin holds `stdin` (or stays
   * open and empty with `stdinOpen`), stdout and stderr collect text; `tty` makes all three TTYs.
   */
  static Test(
    o: { env?: NodeJS.ProcessEnv; stdin?: string; stdinOpen?: boolean; tty?: boolean } = {},
  ): TestStreams {
    const tty = !!o.tty;
    let stdin: InStream;
    if (o.stdinOpen) stdin = new PassThrough();
    else stdin = Readable.from(o.stdin !== undefined && o.stdin !== '' ? [Buffer.from(o.stdin)] : []);
    if (tty) {
      stdin.isTTY = true;
      stdin.setRawMode = () => stdin;
    }
    const stdout = memoryOut(tty);
    const stderr = memoryOut(tty);
    const io = new Io({ stdin, stdout, stderr, env: o.env ?? {} });
    return { io, stdin, stdout, stderr, out: () => stdout.text(), err: () => stderr.text() };
  }


  readonly stdin: InStream;
  readonly stdout: OutStream;
  readonly stderr: OutStream;
  readonly env: NodeJS.ProcessEnv;
  verbose: boolean;
  json: boolean;
  noInput: boolean;
  private warned = new Set<string>();

  constructor(o: IoOptions) {
    this.stdin = o.stdin;
    this.stdout = o.stdout;
    this.stderr = o.stderr;
    this.env = o.env;
    this.verbose = !!o.verbose;
    this.json = !!o.json;
    this.noInput = !!o.noInput;
  }

  /** True when we may ask the user something. */
  get interactive(): boolean {
    const ci = this.env.CI;
    return (
      !this.noInput && !!this.stdin.isTTY && !!this.stdout.isTTY && !(ci && ci !== '0' && ci !== 'false')
    );
  }

  /** stderr is a terminal a person watches (progress bars, device codes with QR). */
  get stderrIsTTY(): boolean {
    return !!this.stderr.isTTY;
  }

  get color(): boolean {
    return !!this.stderr.isTTY && !this.env.NO_COLOR && this.env.TERM !== 'dumb';
  }

  /** Data on stdout (not redacted: a token printed by `oauthmail token` is the point). */
  out(text: string): void {
    this.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  outJson(value: unknown): void {
    this.stdout.write(JSON.stringify(value, null, 2) + '\n');
  }

  /** Talk on stderr, redacted. */
  err(text: string): void {
    const t = redact(text);
    this.stderr.write(t.endsWith('\n') ? t : t + '\n');
  }

  warn(text: string): void {
    if (this.warned.has(text)) return;
    this.warned.add(text);
    this.err(`${this.color ? '\x1b[33mwarning\x1b[0m' : 'warning'}: ${text}`);
  }

  debug(text: string): void {
    if (this.verbose) this.err(`debug: ${text}`);
  }

  /** Fail with exit 4 and the command that fixes it, instead of prompting. */
  requireInteractive(what: string, fix: string): void {
    if (!this.interactive) {
      throw new AuthError(`${what} needs an interactive terminal`, {
        code: 'not_interactive',
        hint: `run: ${fix}`,
      });
    }
  }

  async prompt(question: string, def?: string): Promise<string> {
    if (!this.interactive)
      throw new UsageError(`cannot ask "${question}": not an interactive session`, {
        code: 'not_interactive',
      });
    const rl = createInterface({ input: this.stdin, output: this.stderr, terminal: true });
    try {
      const answer: string = await new Promise((resolve) =>
        rl.question(def ? `${question} [${def}]: ` : `${question}: `, resolve),
      );
      return answer.trim() || def || '';
    } finally {
      rl.close();
    }
  }

  async confirm(question: string, def = false): Promise<boolean> {
    const a = (await this.prompt(`${question} (${def ? 'Y/n' : 'y/N'})`)).toLowerCase();
    if (!a) return def;
    return a === 'y' || a === 'yes';
  }

  /** A hidden prompt: nothing is echoed. */
  async promptHidden(question: string): Promise<string> {
    if (!this.interactive)
      throw new UsageError(`cannot ask "${question}": not an interactive session`, {
        code: 'not_interactive',
      });
    const stdin = this.stdin;
    this.stderr.write(`${question}: `);
    stdin.setRawMode?.(true);
    stdin.resume();
    try {
      return await new Promise<string>((resolve, reject) => {
        let buf = '';
        const onData = (chunk: Buffer) => {
          for (const ch of chunk.toString('utf8')) {
            if (ch === '\r' || ch === '\n') {
              cleanup();
              this.stderr.write('\n');
              resolve(buf);
              return;
            }
            if (ch === '\u0003') {
              cleanup();
              this.stderr.write('\n');
              reject(new UsageError('cancelled', { code: 'cancelled' }));
              return;
            }
            if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
            else buf += ch;
          }
        };
        const cleanup = () => {
          stdin.off('data', onData);
          stdin.setRawMode?.(false);
          stdin.pause();
        };
        stdin.on('data', onData);
      });
    } finally {
      stdin.setRawMode?.(false);
    }
  }

  /** Read all of stdin (for --client-secret-stdin and message bodies). */
  async readStdin(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of this.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  }
}

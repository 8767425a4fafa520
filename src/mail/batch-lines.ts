/**
 * One line of a batch as message options: its JSON fields, and the command line's templates with
 * their {{name}} placeholders filled from the line (src/mail/batch.ts sends them).
 */
import path from 'node:path';
import { UsageError } from '../errors/index.js';
import type { MessageOptions, Priority } from './message.js';
import { plainText } from '../util/text.js';

/** What the command line gives every line: the message fields, attachments as paths only. */
export type BatchTemplate = Pick<
  MessageOptions,
  'from' | 'cc' | 'bcc' | 'replyTo' | 'subject' | 'text' | 'html' | 'headers' | 'signature' | 'priority'
> & { attachments?: string[] };

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

function fill(tpl: string | undefined, vars: Record<string, unknown>): string | undefined {
  if (tpl === undefined) return undefined;
  return tpl.replace(PLACEHOLDER, (_m, k: string) => {
    const v = vars[k];
    return v === undefined || v === null ? '' : plainText(v);
  });
}

/**
 * Placeholders of the templates that a line leaves without a value: checked for every line before
 * anything is sent, so that "Hello {{nmae}}" never goes out as "Hello ". A line that sets the field
 * itself (its own "subject") does not use that template. null counts as a value (empty).
 */
export function missingPlaceholders(
  lines: ReadonlyArray<{ no: number; text: string }>,
  tpl: BatchTemplate,
): Array<{ flag: string; name: string; lines: number[] }> {
  const fields: Array<[flag: string, key: 'subject' | 'text' | 'html', own: string[]]> = [
    ['--subject', 'subject', ['subject']],
    ['--body', 'text', ['text', 'body']],
    ['--html', 'html', ['html']],
  ];
  const found = new Map<string, { flag: string; name: string; lines: number[] }>();
  for (const l of lines) {
    let o: unknown;
    try {
      o = JSON.parse(l.text);
    } catch {
      continue; // reported as that line's own failure
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) continue;
    const line = o as Record<string, unknown>;
    const vars = { ...((line.vars as Record<string, unknown>) ?? {}), ...line };
    for (const [flag, key, own] of fields) {
      const t = tpl[key];
      if (t === undefined || own.some((k) => typeof line[k] === 'string')) continue;
      for (const m of t.matchAll(PLACEHOLDER)) {
        if (vars[m[1]!] !== undefined) continue;
        const id = `${flag}\0${m[1]}`;
        const f = found.get(id) ?? { flag, name: m[1]!, lines: [] };
        if (!f.lines.includes(l.no)) f.lines.push(l.no);
        found.set(id, f);
      }
    }
  }
  return [...found.values()];
}

const list = (v: unknown, what: string, line: number): string[] | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  throw new UsageError(`line ${line}: "${what}" must be a string or a list of strings`, {
    code: 'bad_batch_line',
  });
};

/** Turn one JSON line into message options (exported for unit tests). */
export function lineToOptions(
  raw: string,
  lineNo: number,
  tpl: BatchTemplate = {},
  baseDir = '.',
): MessageOptions {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(raw) as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`line ${lineNo}: not valid JSON`, { code: 'bad_batch_line', cause: e });
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new UsageError(`line ${lineNo}: must be a JSON object`, { code: 'bad_batch_line' });
  }
  const vars = { ...((o.vars as Record<string, unknown>) ?? {}), ...o };
  const str = (k: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string')
      throw new UsageError(`line ${lineNo}: "${k}" must be a string`, { code: 'bad_batch_line' });
    return v;
  };
  let headers: string[] | undefined;
  if (Array.isArray(o.headers)) headers = list(o.headers, 'headers', lineNo);
  else if (o.headers && typeof o.headers === 'object')
    headers = Object.entries(o.headers).map(([k, v]) => `${k}: ${String(v)}`);
  const attachments: MessageOptions['attachments'] = [];
  for (const a of (Array.isArray(o.attachments)
    ? o.attachments
    : o.attachments
      ? [o.attachments]
      : []) as unknown[]) {
    if (typeof a === 'string') attachments.push(path.resolve(baseDir, a));
    else if (a && typeof a === 'object' && typeof (a as { filename?: unknown }).filename === 'string') {
      const x = a as {
        filename: string;
        content?: string;
        path?: string;
        encoding?: string;
        contentType?: string;
      };
      if (x.path) attachments.push(path.resolve(baseDir, x.path));
      else
        attachments.push({
          filename: x.filename,
          content: x.encoding === 'base64' ? Buffer.from(x.content ?? '', 'base64') : (x.content ?? ''),
          ...(x.contentType ? { contentType: x.contentType } : {}),
        });
    } else
      throw new UsageError(`line ${lineNo}: each attachment must be a path or {filename, content}`, {
        code: 'bad_batch_line',
      });
  }
  const to = list(o.to, 'to', lineNo);
  const priority = str('priority') ?? tpl.priority;
  if (priority !== undefined && !['high', 'normal', 'low'].includes(priority)) {
    throw new UsageError(`line ${lineNo}: priority must be high, normal or low`, { code: 'bad_batch_line' });
  }
  const opts: MessageOptions = {
    to: to ?? [],
    cc: list(o.cc, 'cc', lineNo) ?? tpl.cc ?? [],
    bcc: list(o.bcc, 'bcc', lineNo) ?? tpl.bcc ?? [],
    subject: str('subject') ?? fill(tpl.subject, vars) ?? '',
    headers: [...(tpl.headers ?? []), ...(headers ?? [])],
    attachments: [...(tpl.attachments ?? []), ...attachments],
    ...(tpl.signature !== undefined ? { signature: tpl.signature } : {}),
    ...(priority ? { priority: priority as Priority } : {}),
  };
  const from = str('from') ?? tpl.from;
  if (from) opts.from = from;
  const replyTo = str('replyTo') ?? str('reply_to') ?? tpl.replyTo;
  if (replyTo) opts.replyTo = replyTo;
  const text = str('text') ?? str('body') ?? fill(tpl.text, vars);
  if (text !== undefined) opts.text = text;
  const html = str('html') ?? fill(tpl.html, vars);
  if (html !== undefined) opts.html = html;
  return opts;
}

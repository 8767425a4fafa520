/**
 * The relay's log: one line per message (device, client address, from, to, size, result, the
 * upstream reply, time taken), per refusal, and per queue event. Text on stderr, or with --json one
 * JSON object per line on stdout. Never a password or a token (AUTH lines are not logged at all).
 */
export interface MessageRecord {
  device: string;
  remote: string;
  from: string;
  to: string[];
  size: number;
  result: 'sent' | 'queued' | 'refused';
  upstream: string;
  ms: number;
  queueId?: string;
  /** Recipients the upstream refused while it took the message for the others (a dead letter). */
  rejected?: string[];
  deadId?: string;
}

export interface RelayLog {
  message(r: MessageRecord): void;
  event(kind: string, fields: Record<string, unknown>): void;
}

const quote = (v: unknown) => {
  const s = Array.isArray(v) ? v.join(',') : String(v);
  return /^[^\s"=]*$/.test(s) && s !== '' ? s : JSON.stringify(s);
};

export function relayLog(json: boolean, out: (line: string) => void, err: (line: string) => void): RelayLog {
  const write = (kind: string, fields: Record<string, unknown>) => {
    const time = new Date().toISOString();
    if (json) {
      out(JSON.stringify({ time, event: kind, ...fields }));
      return;
    }
    const text = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${quote(v)}`)
      .join(' ');
    err(`${time} relay ${kind} ${text}`);
  };
  return {
    message: (r) => write('message', { ...r }),
    event: write,
  };
}

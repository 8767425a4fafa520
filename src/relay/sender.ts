/**
 * The sender policy of a device, applied to the message as the device sent it. Only the header is
 * touched; the body's bytes go upstream exactly as they came.
 * - rewrite (no Send-As list): the envelope sender and the From field become the profile's mailbox
 *   (the display name is kept), so Exchange Online and Gmail accept it (no SendAsDenied);
 * - Send-As list: the envelope sender and every From address must be in the list (or be the
 *   mailbox itself), else the message is refused with 550 5.7.1.
 * A Bcc field is removed (RFC 5322 §3.6.3: the recipients in it are in the envelope already).
 */
import addressparser from 'nodemailer/lib/addressparser';

export interface SenderPolicy {
  mailbox: string;
  sendAs?: string[];
}

export class SenderRefused extends Error {}

function split(raw: Buffer): { head: string; body: Buffer; eol: string } {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) {
    return { head: raw.subarray(0, crlf + 2).toString('latin1'), body: raw.subarray(crlf + 2), eol: '\r\n' };
  }
  if (lf >= 0)
    return { head: raw.subarray(0, lf + 1).toString('latin1'), body: raw.subarray(lf + 1), eol: '\n' };
  return { head: raw.toString('latin1'), body: Buffer.alloc(0), eol: '\r\n' };
}

/** Header fields with their raw (folded) text, in order. */
function fields(head: string): string[] {
  const out: string[] = [];
  for (const line of head.split(/(?<=\n)/)) {
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1] += line;
    else if (line.length) out.push(line);
  }
  return out;
}

const nameOf = (f: string) => /^([^:\s]+)\s*:/.exec(f)?.[1]?.toLowerCase() ?? '';
const valueOf = (f: string) =>
  f
    .slice(f.indexOf(':') + 1)
    .replace(/\r?\n[ \t]/g, ' ')
    .trim();

function allowedSender(policy: SenderPolicy, address: string): boolean {
  const a = address.toLowerCase();
  return a === policy.mailbox.toLowerCase() || (policy.sendAs ?? []).some((s) => s.toLowerCase() === a);
}

/** The envelope sender after the policy; throws SenderRefused when the list does not have it. */
export function envelopeSender(policy: SenderPolicy, from: string): string {
  if (!policy.sendAs) return policy.mailbox;
  if (!allowedSender(policy, from)) {
    throw new SenderRefused(`5.7.1 sender <${from}> is not in this device's Send-As list`);
  }
  return from;
}

/** The message after the policy (header only); throws SenderRefused for a From outside the list. */
export function applySenderPolicy(policy: SenderPolicy, raw: Buffer): Buffer {
  const { head, body, eol } = split(raw);
  const out: string[] = [];
  let sawFrom = false;
  for (const f of fields(head)) {
    const name = nameOf(f);
    if (name === 'bcc') continue;
    if (name === 'from') {
      sawFrom = true;
      const parsed = addressparser(valueOf(f), { flatten: true });
      if (policy.sendAs) {
        const bad = parsed.find((a) => !a.address || !allowedSender(policy, a.address));
        if (bad || !parsed.length)
          throw new SenderRefused(
            `5.7.1 From ${bad?.address || valueOf(f).slice(0, 80)} is not in this device's Send-As list`,
          );
        out.push(f);
        continue;
      }
      const display = (parsed[0]?.name ?? '').replace(/["\\\r\n]/g, '');
      out.push(`From: ${display ? `"${display}" <${policy.mailbox}>` : policy.mailbox}${eol}`);
      continue;
    }
    out.push(f);
  }
  if (!sawFrom) out.unshift(`From: ${policy.mailbox}${eol}`);
  return Buffer.concat([Buffer.from(out.join(''), 'latin1'), body]);
}

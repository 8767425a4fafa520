/** `mailboxes` and `list`: read-only views of the server. */
import type { ImapFlow } from 'imapflow';
import { imapError } from '../imap.js';
import { uidSet } from '../uid-ranges.js';
import { buildSearch, type Filters } from './filters.js';

export async function openMailbox(client: ImapFlow, mailbox: string, readOnly: boolean) {
  try {
    return await client.getMailboxLock(mailbox, { readOnly });
  } catch (e) {
    throw imapError(e, { mailbox, user: String(client.options.auth?.user ?? '') });
  }
}

/**
 * The UIDs matching the filters, ascending. UIDs at or above `below` (the mailbox's UIDNEXT when it
 * was opened) are dropped: no message can have one (RFC 9051 §2.3.1.1), so a SEARCH answer that
 * lists them is wrong, and trusting it would mark messages "saved" that were never downloaded.
 */
export async function searchUids(client: ImapFlow, f: Filters, below?: number): Promise<number[]> {
  const r = await client.search(buildSearch(f), { uid: true });
  const uids = (Array.isArray(r) ? r : []).filter(
    (u) => Number.isInteger(u) && u > 0 && (below === undefined || u < below),
  );
  return uids.sort((a, b) => a - b);
}

export interface MailboxRow {
  path: string;
  name: string;
  delimiter: string;
  specialUse?: string;
  messages?: number;
  unseen?: number;
  depth: number;
  selectable: boolean;
}

export async function listMailboxes(client: ImapFlow): Promise<MailboxRow[]> {
  const list = await client.list({ statusQuery: { messages: true, unseen: true } });
  const rows = list.map((m) => ({
    path: m.path,
    name: m.name,
    delimiter: m.delimiter,
    ...(m.specialUse ? { specialUse: m.specialUse } : {}),
    ...(m.status?.messages !== undefined ? { messages: m.status.messages } : {}),
    ...(m.status?.unseen !== undefined ? { unseen: m.status.unseen } : {}),
    depth: m.parent.length,
    selectable: !m.flags.has('\\Noselect') && !m.flags.has('\\NonExistent'),
  }));
  // INBOX first, then the tree in path order
  return rows.sort((a, b) =>
    a.path === 'INBOX' ? -1 : b.path === 'INBOX' ? 1 : a.path.localeCompare(b.path),
  );
}

export interface MessageRow {
  uid: number;
  date: string | undefined;
  from: string;
  subject: string;
  size: number;
  flags: string[];
}

function addressText(a: { name?: string; address?: string } | undefined): string {
  if (!a) return '';
  return a.name ? `${a.name} <${a.address ?? ''}>` : (a.address ?? '');
}

/** Rows for `list`: the newest `limit` matching messages, oldest first. */
export async function listMessages(client: ImapFlow, mailbox: string, f: Filters): Promise<MessageRow[]> {
  const lock = await openMailbox(client, mailbox, true);
  try {
    let uids = await searchUids(
      client,
      f,
      client.mailbox ? Number(client.mailbox.uidNext) || undefined : undefined,
    );
    if (f.limit !== undefined) uids = uids.slice(Math.max(0, uids.length - f.limit));
    if (!uids.length) return [];
    const rows: MessageRow[] = [];
    for await (const m of client.fetch(
      uidSet(uids),
      { uid: true, envelope: true, size: true, flags: true, internalDate: true },
      { uid: true },
    )) {
      const date = m.envelope?.date ?? m.internalDate;
      rows.push({
        uid: m.uid,
        date: date ? new Date(date).toISOString() : undefined,
        from: addressText(m.envelope?.from?.[0]),
        subject: m.envelope?.subject ?? '',
        size: m.size ?? 0,
        // \Recent is per session and gone from IMAP4rev2 (RFC 9051 §2.3.2): it says nothing about the message
        flags: [...(m.flags ?? [])].filter((fl) => fl !== '\\Recent').sort(),
      });
    }
    return rows.sort((a, b) => a.uid - b.uid);
  } finally {
    lock.release();
  }
}

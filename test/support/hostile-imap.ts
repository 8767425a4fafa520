/**
 * A scripted IMAP server in the test process (plain TCP on 127.0.0.1), in the spirit of imapflow's
 * own test servers: just enough of RFC 9051 for `fetch` (greeting, AUTHENTICATE XOAUTH2 with SASL-IR,
 * SELECT/EXAMINE, UID SEARCH, UID FETCH with partial BODY[], UID STORE, UID EXPUNGE, LOGOUT), and
 * the misbehaviours a hostile or broken server shows:
 *  - omit:      UIDs left out of every FETCH answer;
 *  - noBody:    UIDs answered without a body (FETCH with UID and size only);
 *  - searchExtra: UIDs the SEARCH answer lists that do not exist (at or above UIDNEXT);
 *  - hugeLiteral: a UID whose body is announced as a literal of this many bytes, then streamed;
 *  - stall:     a UID whose literal is announced, half sent, and then nothing more, ever.
 * It records which UIDs the client flagged \Deleted and expunged, so a test can check that nothing
 * was deleted that is not on disk.
 */
import net from 'node:net';

export interface HostileOptions {
  uidValidity?: number;
  messages: Map<number, Buffer>;
  omit?: Set<number>;
  noBody?: Set<number>;
  searchExtra?: number[];
  hugeLiteral?: { uid: number; bytes: number };
  stall?: { uid: number };
}

export interface HostileServer {
  port: number;
  /** UIDs flagged \Deleted, in the order the client asked. */
  deleted: number[];
  /** UIDs removed by EXPUNGE / UID EXPUNGE. */
  expunged: number[];
  /** Bytes of the huge literal actually written to the socket. */
  hugeBytesSent: () => number;
  close(): Promise<void>;
}

function parseSet(set: string, max: number): number[] {
  const out: number[] = [];
  for (const part of set.split(',')) {
    const [a, b] = part.split(':').map((x) => (x === '*' ? max : Number(x)));
    const lo = Math.min(a!, b ?? a!);
    const hi = Math.max(a!, b ?? a!);
    for (let u = lo; u <= hi && u - lo < 10_000_000; u++) out.push(u);
  }
  return out;
}

export async function startHostileImap(o: HostileOptions): Promise<HostileServer> {
  const uidValidity = o.uidValidity ?? 1700000001;
  const flags = new Map<number, Set<string>>();
  const deleted: number[] = [];
  const expunged: number[] = [];
  let hugeSent = 0;
  const sockets = new Set<net.Socket>();
  const uids = () => [...o.messages.keys()].sort((a, b) => a - b);
  const uidNext = () => Math.max(0, ...o.messages.keys()) + 1;
  const caps = 'IMAP4rev1 AUTH=XOAUTH2 SASL-IR UIDPLUS';

  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = '';
    let busy = Promise.resolve();
    const w = (s: string) => {
      if (!sock.destroyed) sock.write(s);
    };
    w(`* OK [CAPABILITY ${caps}] hostile test server ready\r\n`);

    const fetch = async (tag: string, set: string, items: string) => {
      const all = uids();
      const wanted = parseSet(set, uidNext() - 1);
      const partial = /BODY\.PEEK\[\]<(\d+)\.(\d+)>/i.exec(items);
      const whole = /BODY\.PEEK\[\](?!<)/i.test(items);
      for (const uid of wanted) {
        const msg = o.messages.get(uid);
        if (!msg || o.omit?.has(uid)) continue;
        const seq = all.indexOf(uid) + 1;
        let head = `* ${seq} FETCH (UID ${uid}`;
        if (/RFC822\.SIZE/i.test(items)) head += ` RFC822.SIZE ${msg.length}`;
        if (/INTERNALDATE/i.test(items)) head += ` INTERNALDATE "20-Nov-2025 10:00:00 +0000"`;
        if (/FLAGS/i.test(items)) head += ` FLAGS (${[...(flags.get(uid) ?? [])].join(' ')})`;
        if (!(partial || whole) || o.noBody?.has(uid)) {
          w(`${head})\r\n`);
          continue;
        }
        const start = partial ? Number(partial[1]) : 0;
        const origin = partial ? `<${start}>` : '';
        if (o.hugeLiteral?.uid === uid) {
          w(`${head} BODY[]${origin} {${o.hugeLiteral.bytes}}\r\n`);
          const chunk = Buffer.alloc(64 * 1024, 0x61);
          while (hugeSent < o.hugeLiteral.bytes && !sock.destroyed) {
            const ok = sock.write(chunk);
            hugeSent += chunk.length;
            if (!ok) {
              await new Promise<void>((r) => {
                sock.once('drain', r);
                sock.once('close', r);
              });
            }
          }
          return; // a response that never ends as IMAP expects: the client must give up
        }
        const body = partial ? msg.subarray(start, start + Number(partial[2])) : msg;
        if (o.stall?.uid === uid) {
          w(`${head} BODY[]${origin} {${body.length}}\r\n`);
          sock.write(body.subarray(0, Math.floor(body.length / 2)));
          return; // and never another byte
        }
        w(`${head} BODY[]${origin} {${body.length}}\r\n`);
        sock.write(body);
        w(')\r\n');
      }
      w(`${tag} OK UID FETCH done\r\n`);
    };

    const handle = async (line: string) => {
      const m = /^(\S+) (?:(UID) )?(\S+)(?: (.*))?$/i.exec(line);
      if (!m) return w(`* BAD what?\r\n`);
      const [, tag, uidPrefix, cmd0, rest = ''] = m;
      const cmd = cmd0!.toUpperCase();
      if (cmd === 'CAPABILITY') return w(`* CAPABILITY ${caps}\r\n${tag} OK done\r\n`);
      if (cmd === 'AUTHENTICATE') return w(`${tag} OK [CAPABILITY ${caps}] signed in\r\n`);
      if (cmd === 'LOGOUT') {
        w(`* BYE bye\r\n${tag} OK done\r\n`);
        sock.end();
        return;
      }
      if (cmd === 'LIST') return w(`* LIST (\\Noselect) "/" ""\r\n${tag} OK done\r\n`);
      if (cmd === 'SELECT' || cmd === 'EXAMINE') {
        return w(
          `* FLAGS (\\Seen \\Deleted)\r\n* ${o.messages.size} EXISTS\r\n` +
            `* OK [UIDVALIDITY ${uidValidity}] ok\r\n* OK [UIDNEXT ${uidNext()}] ok\r\n` +
            `${tag} OK [${cmd === 'SELECT' ? 'READ-WRITE' : 'READ-ONLY'}] done\r\n`,
        );
      }
      if (cmd === 'SEARCH' && uidPrefix) {
        const list = [...uids(), ...(o.searchExtra ?? [])];
        // written in pieces: a long answer is one line, but need not be one string here
        w('* SEARCH');
        for (let i = 0; i < list.length; i += 50_000) w(' ' + list.slice(i, i + 50_000).join(' '));
        return w(`\r\n${tag} OK SEARCH done\r\n`);
      }
      if (cmd === 'FETCH' && uidPrefix) {
        const f = /^(\S+) (.*)$/.exec(rest);
        return fetch(tag!, f?.[1] ?? '', f?.[2] ?? '');
      }
      if (cmd === 'STORE' && uidPrefix) {
        const f = /^(\S+) \+FLAGS(?:\.SILENT)? \((.*)\)$/i.exec(rest);
        if (f) {
          for (const uid of parseSet(f[1]!, uidNext() - 1)) {
            if (!o.messages.has(uid)) continue;
            const s = flags.get(uid) ?? new Set<string>();
            for (const fl of f[2]!.split(' ')) s.add(fl);
            flags.set(uid, s);
            if (/\\Deleted/i.test(f[2]!)) deleted.push(uid);
          }
        }
        return w(`${tag} OK STORE done\r\n`);
      }
      if (cmd === 'EXPUNGE') {
        const only = uidPrefix ? new Set(parseSet(rest, uidNext() - 1)) : undefined;
        for (const uid of uids()) {
          if (!flags.get(uid)?.has('\\Deleted') || (only && !only.has(uid))) continue;
          const seq = uids().indexOf(uid) + 1;
          o.messages.delete(uid);
          expunged.push(uid);
          w(`* ${seq} EXPUNGE\r\n`);
        }
        return w(`${tag} OK EXPUNGE done\r\n`);
      }
      return w(`${tag} OK ${cmd} done\r\n`);
    };

    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        busy = busy.then(() => handle(line));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    deleted,
    expunged,
    hugeBytesSent: () => hugeSent,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

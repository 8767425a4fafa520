/**
 * Issue 17, "no message lost": the relay SIGKILLed at random moments while concurrent clients
 * (Python's smtplib, one thread each, retrying after a dropped connection as a device does) keep
 * sending. Every message that got a 250 arrives in Dovecot; a message may arrive twice when a kill
 * fell between the upstream's 250 and the device's (the device sends it again), so duplicates are
 * counted and bounded by kills × clients (each kill can cut at most one message per client).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { CliHome } from '../support/cli.js';
import type { TestIdp } from '../support/signin.js';
import { mailbox, type Stack } from './send-support.js';
import { closedPort } from './queue-support.js';
import { addDevice, relayLab, startRelay, type RunningRelay } from '../support/relay-support.js';

let s: Stack;
let h: CliHome;
let idp: TestIdp;
let pw: string;
const BOB = 'bob@contoso.test';
const CLIENTS = 5;
const PER_CLIENT = 20;
const KILLS = 6;

beforeAll(async () => {
  ({ s, h, idp } = await relayLab());
  pw = await addDevice(h, 'loadgen');
}, 120_000);

afterAll(async () => {
  await idp?.close();
});

/** The clients: each thread sends its messages one by one, again after any failure; prints acked tags. */
function clients(port: number, run: string): { done: Promise<{ code: number | null; out: string }> } {
  const py = `
import smtplib, sys, threading, time
pw = sys.stdin.readline().strip()
acked = []
lock = threading.Lock()
def client(c):
    for i in range(${PER_CLIENT}):
        tag = "${run}-%d-%d" % (c, i)
        msg = ("From: loadgen@printers.invalid\\r\\nTo: ${BOB}\\r\\nSubject: kill %s\\r\\n\\r\\nbody %s\\r\\n" % (tag, tag)).encode()
        for attempt in range(600):
            try:
                s = smtplib.SMTP("127.0.0.1", ${port}, timeout=30)
                s.login("loadgen", pw)
                s.sendmail("loadgen@printers.invalid", ["${BOB}"], msg)
                with lock: acked.append(tag)
                try: s.quit()
                except Exception: pass
                break
            except Exception:
                time.sleep(0.1)
threads = [threading.Thread(target=client, args=(c,)) for c in range(${CLIENTS})]
for t in threads: t.start()
for t in threads: t.join()
print("\\n".join(acked))
`;
  const child = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(pw + '\n');
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { done: new Promise((resolve) => child.on('close', (code) => resolve({ code, out }))) };
}

describe('relay SIGKILLed during a run', () => {
  it(`${KILLS} kills, ${CLIENTS * PER_CLIENT} messages from ${CLIENTS} clients: every 250 arrives, duplicates bounded`, async () => {
    const port = await closedPort();
    const args = ['--listen', `127.0.0.1:${port}`, '--queue-every', '1s'];
    const run = `k${Date.now().toString(36)}`;
    let relay: RunningRelay = await startRelay(h, args);
    const load = clients(port, run);
    let finished = false;
    void load.done.then(() => (finished = true));
    let kills = 0;
    while (kills < KILLS && !finished) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 1200));
      if (finished) break;
      relay.signal('SIGKILL');
      await relay.done;
      kills++;
      relay = await startRelay(h, args);
    }
    const { code, out } = await load.done;
    expect(code, out).toBe(0);
    const acked = out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith(run));
    expect(acked.length).toBe(CLIENTS * PER_CLIENT);
    // the restarted relay delivers what a killed one had queued; then every acked message is there
    const queueDir = path.join(h.env.OAUTHMAIL_DATA_DIR!, 'queue');
    const count = () => {
      const n = new Map<string, number>();
      for (const m of mailbox(s, BOB)) {
        const t = new RegExp(`Subject: kill (${run}-\\d+-\\d+)`).exec(m.text)?.[1];
        if (t) n.set(t, (n.get(t) ?? 0) + 1);
      }
      return n;
    };
    const end = Date.now() + 60_000;
    let got = count();
    while (acked.some((t) => !got.has(t)) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 250));
      got = count();
    }
    const queued = (() => {
      try {
        return readdirSync(queueDir).filter((f) => f.endsWith('.msg')).length;
      } catch {
        return 0;
      }
    })();
    const r = await relay.stop();
    expect(r.code, r.stderr).toBe(0);
    const lost = acked.filter((t) => !got.has(t));
    const duplicates = [...got.values()].reduce((a, n) => a + n - 1, 0);
    console.log(
      `relay-kill: ${kills} kills, ${acked.length} acked, ${lost.length} lost, ${duplicates} duplicates, ${queued} still queued`,
    );
    expect(lost).toEqual([]);
    expect(kills).toBeGreaterThan(0);
    expect(duplicates).toBeLessThanOrEqual(kills * CLIENTS);
  }, 300_000);
});

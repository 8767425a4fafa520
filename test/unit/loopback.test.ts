// The loopback redirect listener (src/auth/loopback.ts) on its own: which addresses it holds,
// a random port taken on [::1] only, and the browser's request held until settle() answers it.
import { describe, it, expect, vi, afterEach } from 'vitest';
import http from 'node:http';
import { LoopbackServer } from '../../src/auth/loopback.js';
import { AuthError } from '../../src/errors/index.js';

const WAIT = { timeoutMs: 60_000, retryCommand: 'oauthmail login work', errorPage: () => 'idp error page' };

/** A browser's request to the redirect URI through `address`; resolves status and body. */
function browserGet(address: string, port: number, query: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.get(
      { host: address, port, path: `/?${query}`, headers: { host: `localhost:${port}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    r.on('error', reject);
  });
}

/** Does the browser's request still wait for an answer after the listener has seen it? */
async function stillWaiting(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('waiting');
  // a few turns of the event loop: a page already sent would have arrived by then
  const tick = new Promise((r) => setImmediate(() => setImmediate(() => r(marker))));
  return (await Promise.race([p, tick])) === marker;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('LoopbackServer', () => {
  it('on a random port, holds it on both 127.0.0.1 and [::1] (Chromium tries [::1] first)', async () => {
    const server = await LoopbackServer.start({ profileName: 'work' });
    try {
      const port = Number(new URL(server.redirectUri).port);
      expect(server.redirectUri).toBe(`http://localhost:${port}`);
      for (const host of ['127.0.0.1', '::1']) {
        const err = await new Promise<string | undefined>((resolve) => {
          const s = http.createServer();
          s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code));
          s.listen(port, host, () => s.close(() => resolve(undefined)));
        });
        expect(err, host).toBe('EADDRINUSE');
      }
    } finally {
      await server.close();
    }
  });

  it('a random port that another program holds on [::1] only is given up for another one', async () => {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- the original, called with .apply(this) below
    const listen = http.Server.prototype.listen;
    const tried: number[] = [];
    // the kernel says "in use" for the first [::1] bind, as when a program squats there
    vi.spyOn(http.Server.prototype, 'listen').mockImplementation(function (
      this: http.Server,
      ...args: unknown[]
    ) {
      if (args[1] === '::1' && tried.push(args[0] as number) === 1) {
        setImmediate(() => this.emit('error', Object.assign(new Error('in use'), { code: 'EADDRINUSE' })));
        return this;
      }
      return (listen as (...a: unknown[]) => http.Server).apply(this, args);
    });
    const server = await LoopbackServer.start({ profileName: 'work' });
    try {
      const port = Number(new URL(server.redirectUri).port);
      expect(tried).toHaveLength(2);
      expect(port).toBe(tried[1]);
      expect(port).not.toBe(tried[0]);
    } finally {
      await server.close();
    }
  });

  it('a fixed port taken on any loopback address is refused, naming the address and the fix', async () => {
    const squatter = http.createServer();
    await new Promise<void>((r) => squatter.listen(0, '::1', () => r()));
    const port = (squatter.address() as import('node:net').AddressInfo).port;
    try {
      const e = await LoopbackServer.start({ profileName: 'work', port }).catch((x: unknown) => x);
      expect(e).toMatchObject({
        code: 'redirect_port_in_use',
        exitCode: 3,
        message: `the sign-in redirect address [::1]:${port} is in use by another program, which would receive the sign-in`,
      });
      expect((e as { hint: string }).hint).toContain(
        'oauthmail profile edit work --set redirectPort=OTHER_PORT',
      );
      const e2 = await LoopbackServer.start({
        profileName: 'work',
        redirectUri: `http://localhost:${port}/cb`,
      }).catch((x: unknown) => x);
      expect((e2 as { hint: string }).hint).toContain(
        'oauthmail profile edit work --set redirectUri=http://localhost:OTHER_PORT/cb',
      );
    } finally {
      squatter.close();
    }
  });

  it('holds the browser until settle() answers: success after the work, or the error it threw', async () => {
    for (const outcome of ['ok', 'fails'] as const) {
      const server = await LoopbackServer.start({ profileName: 'work' });
      try {
        const port = Number(new URL(server.redirectUri).port);
        const waiting = server.waitForResponse('S1', WAIT);
        const page = browserGet('::1', port, 'code=the-code&state=S1');
        expect((await waiting).code).toBe('the-code');
        expect(await stillWaiting(page)).toBe(true);
        let finishWork!: () => void;
        const workDone = new Promise<void>((r) => (finishWork = r));
        const settled = server.settle(
          async () => {
            await workDone;
            if (outcome === 'fails') {
              throw new AuthError('the identity provider refused the code', {
                code: 'invalid_grant',
                hint: 'run: oauthmail login work',
              });
            }
            return { account: 'alice@contoso.test' };
          },
          (t) => `<h1>Signed in as ${t.account}</h1>`,
        );
        expect(await stillWaiting(page)).toBe(true);
        finishWork();
        if (outcome === 'ok') {
          await settled;
          expect(await page).toEqual({ status: 200, body: '<h1>Signed in as alice@contoso.test</h1>' });
        } else {
          await expect(settled).rejects.toThrow('refused the code');
          const { body } = await page;
          expect(body).toContain('id="oauthmail-error"');
          expect(body).toContain('The identity provider refused the code.');
          expect(body).toContain('run: oauthmail login work');
          expect(body).not.toContain('Signed in');
        }
      } finally {
        await server.close();
      }
    }
  });

  it('the browser waits at most holdMs, then hears that the sign-in is still being finished', async () => {
    const server = await LoopbackServer.start({ profileName: 'work' });
    try {
      const port = Number(new URL(server.redirectUri).port);
      const waiting = server.waitForResponse('S1', { ...WAIT, holdMs: 0 });
      const page = browserGet('127.0.0.1', port, 'code=c0de&state=S1');
      await waiting;
      const { body } = await page;
      expect(body).toContain('id="oauthmail-pending"');
      expect(body).toContain('The terminal shows whether it worked');
      // the late result no longer has a page to go to, and does not fail because of that
      await expect(
        server.settle(
          () => Promise.resolve(1),
          () => 'late',
        ),
      ).resolves.toBe(1);
    } finally {
      await server.close();
    }
  });

  it('closing before settle() (an error on the way) answers the browser with a failure, never leaves it hanging', async () => {
    const server = await LoopbackServer.start({ profileName: 'work' });
    const port = Number(new URL(server.redirectUri).port);
    const waiting = server.waitForResponse('S1', WAIT);
    const page = browserGet('127.0.0.1', port, 'code=c0de&state=S1');
    await waiting;
    await server.close();
    const { body } = await page;
    expect(body).toContain('id="oauthmail-error"');
    expect(body).toContain('The sign-in could not be finished.');
  });

  it('a browser that went away while held does not keep the login waiting', async () => {
    const server = await LoopbackServer.start({ profileName: 'work' });
    try {
      const port = Number(new URL(server.redirectUri).port);
      const waiting = server.waitForResponse('S1', WAIT);
      const gone = new Promise<void>((resolve) => {
        const r = http.get({
          host: '127.0.0.1',
          port,
          path: '/?code=c0de&state=S1',
          headers: { host: `localhost:${port}` },
        });
        r.on('error', () => resolve());
        void waiting.then(() => r.destroy());
      });
      await waiting;
      await gone;
      // the listener has seen the socket close before the result is ready
      const held = () => (server as unknown as { held?: { res: http.ServerResponse } }).held;
      await vi.waitFor(() => expect(held()?.res.closed).toBe(true));
      await expect(
        server.settle(
          () => Promise.resolve('stored'),
          () => 'page',
        ),
      ).resolves.toBe('stored');
    } finally {
      await server.close();
    }
  }, 5_000);

  it('a second copy of the response (a reload) does not get a page of its own', async () => {
    const server = await LoopbackServer.start({ profileName: 'work' });
    try {
      const port = Number(new URL(server.redirectUri).port);
      const waiting = server.waitForResponse('S1', WAIT);
      const first = browserGet('127.0.0.1', port, 'code=c0de&state=S1');
      await waiting;
      const again = await browserGet('::1', port, 'code=c0de&state=S1');
      expect(again.status).toBe(409);
      expect(again.body).toContain('already received this sign-in');
      await server.settle(
        () => Promise.resolve(1),
        () => 'done',
      );
      expect((await first).body).toBe('done');
    } finally {
      await server.close();
    }
  });
});

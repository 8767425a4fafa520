/**
 * `login --paste`: where the redirect cannot reach us (a machine reached over SSH), the person
 * opens the URL anywhere, and pastes the address the browser ended on (or just the code) here.
 */
import type { Readable } from 'node:stream';

export async function readPastedRedirect(
  io: { err(text: string): void; readonly stdin: Readable },
  url: string,
  o: { redirectUri: string; timeoutMs: number },
): Promise<string | undefined> {
  io.err('Open this URL in a browser on any computer and sign in:');
  io.err(url);
  io.err(
    `The browser then goes to ${o.redirectUri}... and shows an error page (nothing listens there): that is expected.`,
  );
  io.err(
    'Copy the whole address from the address bar (or just the code) and paste it here, then press Enter:',
  );
  return readLine(io.stdin, o.timeoutMs);
}

/** Read one line from stdin (pasted), or undefined at EOF or after the timeout. */
function readLine(stdin: NodeJS.ReadableStream, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      resolve(v);
    };
    const onData = (c: Buffer | string) => {
      buf += c.toString();
      const i = buf.search(/\r?\n/);
      if (i >= 0) done(buf.slice(0, i));
    };
    const onEnd = () => done(buf.trim() ? buf : undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}

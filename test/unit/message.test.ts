import { describe, it, expect } from 'vitest';
import { buildMessage, parseHeaders, renderMessage } from '../../src/mail/message.js';
import { transportOptions } from '../../src/mail/smtp.js';
import { isLoopbackHost } from '../../src/mail/tls.js';

describe('buildMessage', () => {
  it('defaults From, Reply-To and the signature from the profile; envelope has every recipient once', async () => {
    const b = await buildMessage(
      {
        to: ['Bob <bob@x.test>, c@x.test'],
        cc: ['C@x.test'],
        bcc: ['d@x.test'],
        subject: 'Hi',
        text: 'body',
      },
      { user: 'me@x.test', from: 'Me <me@x.test>', replyTo: 'r@x.test', signature: 'Me' },
    );
    expect(b.mail.from).toEqual({ name: 'Me', address: 'me@x.test' });
    expect(b.mail.replyTo).toBe('r@x.test');
    expect(b.mail.text).toBe('body\n\n-- \nMe\n');
    expect(b.envelope).toEqual({ from: 'me@x.test', to: ['bob@x.test', 'c@x.test', 'd@x.test'] });
  });

  it('--no-signature leaves the body alone; HTML gets an escaped signature block', async () => {
    const a = await buildMessage(
      { to: ['a@x.test'], text: 't', signature: false },
      { user: 'me@x.test', signature: 'S' },
    );
    expect(a.mail.text).toBe('t');
    const h = await buildMessage(
      { to: ['a@x.test'], html: '<p>x</p>' },
      { user: 'me@x.test', signature: 'A <b>' },
    );
    expect(typeof h.mail.html).toBe('string');
    expect(h.mail.html).toContain('-- <br>A &lt;b&gt;');
  });

  it.each([
    [{ to: ['bob@x.test'], subject: 'a\r\nBcc: e@evil.test' }, /line breaks/],
    [{ to: ['bob@x.test'], subject: 'a\nb' }, /line breaks/],
    [{ to: ['bob@x.test\nBcc: e@evil.test'] }, /line breaks/],
    [{ to: ['bob@x.test'], from: 'me@x.test\r\nX: y' }, /line breaks/],
    [{ to: ['not an address'] }, /not an email address/],
    [{ to: ['a@b@x.test'] }, /not an email address/],
    [{ to: [] }, /no recipients/],
    [{ to: ['a@x.test'], headers: ['X-A: 1\r\nBcc: e@evil.test'] }, /line breaks/],
    [{ to: ['a@x.test'], headers: ['Bcc: e@evil.test'] }, /--bcc/],
    [{ to: ['a@x.test'], headers: ['no colon'] }, /Name: value/],
    [{ to: ['a@x.test'], attachments: ['/nonexistent/file'] }, /no such file/],
  ])('refuses bad input with exit 2: %j', async (opts, re) => {
    const e = (await buildMessage(opts, { user: 'me@x.test' }).catch((x: unknown) => x)) as {
      exitCode: number;
      message: string;
    };
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(re);
  });

  it('no sender anywhere is a config error (3)', async () => {
    const e = (await buildMessage({ to: ['a@x.test'] }, {}).catch((x: unknown) => x)) as { exitCode: number };
    expect(e.exitCode).toBe(3);
  });

  it('renders UTF-8 subjects as encoded words, priority headers, no Bcc header', async () => {
    const b = await buildMessage(
      { to: ['a@x.test'], bcc: ['hidden@x.test'], subject: 'Grüße ✓', text: 'x', priority: 'high' },
      { user: 'me@x.test' },
    );
    const raw = (await renderMessage(b)).toString();
    expect(raw).toMatch(/^Subject: =\?UTF-8\?/m);
    expect(raw).toMatch(/^X-Priority: 1/m);
    expect(raw).not.toMatch(/hidden@x\.test/);
  });

  it('parseHeaders keeps custom headers', () => {
    expect(parseHeaders(['X-Ticket: 42', 'List-Unsubscribe: <mailto:u@x.test>'])).toEqual([
      { key: 'X-Ticket', value: '42' },
      { key: 'List-Unsubscribe', value: '<mailto:u@x.test>' },
    ]);
  });
});

describe('TLS rules', () => {
  it('loopback hosts', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]'])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['smtp.office365.com', '10.0.0.1', 'localhost.example.com'])
      expect(isLoopbackHost(h)).toBe(false);
  });

  it('plain SMTP to a non-loopback host is refused (exit 3); STARTTLS and TLS verify certificates', () => {
    const e = (() => {
      try {
        transportOptions({ smtp: { host: 'smtp.example.com', port: 25, security: 'none' } });
      } catch (x) {
        return x as { exitCode: number; message: string };
      }
    })();
    expect(e?.exitCode).toBe(3);
    const st = transportOptions({ smtp: { host: 'smtp.office365.com', port: 587, security: 'starttls' } });
    expect(st).toMatchObject({
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: true, servername: 'smtp.office365.com' },
    });
    const tls = transportOptions({ smtp: { host: 'smtp.gmail.com', port: 465, security: 'tls' } });
    expect(tls).toMatchObject({ secure: true, tls: { rejectUnauthorized: true } });
    expect(transportOptions({ smtp: { host: '127.0.0.1', port: 25, security: 'none' } })).toMatchObject({
      secure: false,
      requireTLS: false,
    });
  });

  it('--insecure-tls turns verification off and warns; --ca must be a PEM certificate', () => {
    const warnings: string[] = [];
    const o = transportOptions(
      { smtp: { host: 'smtp.example.com', port: 587, security: 'starttls' } },
      { insecureTls: true, warn: (w) => warnings.push(w) },
    );
    expect(o).toMatchObject({ tls: { rejectUnauthorized: false } });
    expect(warnings.join()).toMatch(/NOT verified/);
    expect(() =>
      transportOptions(
        { smtp: { host: 'h.example.com', port: 587, security: 'starttls' } },
        { caFile: '/nonexistent.pem' },
      ),
    ).toThrow(/--ca/);
  });
});

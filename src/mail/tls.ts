/**
 * TLS rules shared by SMTP and IMAP: plain text only on loopback, and a private CA from a file.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors/index.js';

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h.endsWith('.localhost');
}

/** The PEM certificates of `--ca FILE`, checked to be PEM. */
export function readCaFile(caFile: string): string {
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (e) {
    throw new UsageError(`--ca ${caFile}: cannot read it`, { code: 'bad_ca', cause: e });
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(ca)) {
    throw new UsageError(`--ca ${caFile}: not a PEM certificate`, { code: 'bad_ca' });
  }
  return ca;
}

/**
 * The MSAL application of a Microsoft profile (`@azure/msal-node` 7, loaded only when a grant
 * needs it): its credential (client secret or certificate, read once per process), our network
 * module (the profile's retry policy), and a cache plugin that never touches the store.
 *
 * MSAL's ICachePlugin calls beforeCacheAccess (read) and afterCacheAccess (write) around each
 * cache use, but a silent acquisition reads, then goes to the network, then writes: a lock taken
 * inside the plugin would not cover the network call. So the plugin only hands MSAL the cache
 * text the token service read (under its lock) and keeps what MSAL wrote; the token service
 * writes that to the store (token-service.ts).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type {
  ConfidentialClientApplication,
  Configuration,
  ICachePlugin,
  INetworkModule,
  PublicClientApplication,
  TokenCacheContext,
} from '@azure/msal-node';
import type { Profile } from '../../config/schema.js';
import { ConfigError } from '../../errors/index.js';
import { registerSecret } from '../../util/redact.js';
import { loadClientSecret } from '../client-secret.js';
import type { AuthDeps } from '../types.js';
import { parseCache } from './cache.js';

/** Hosts of Microsoft's public and sovereign clouds; any other authority host is "known" explicitly. */
const MICROSOFT_HOSTS = new Set([
  'login.microsoftonline.com',
  'login.microsoft.com',
  'login.windows.net',
  'sts.windows.net',
  'login.microsoftonline.us',
  'login.usgovcloudapi.net',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
  'login.microsoftonline.de',
]);

export type App = PublicClientApplication | ConfidentialClientApplication;
type Credential = Pick<Configuration['auth'], 'clientSecret' | 'clientCertificate'>;

/** An MSAL application with the cache text it started from; `written()` is what MSAL stored last. */
export interface MsalApp {
  app: App;
  written(): string | undefined;
}

export class MsalSession {
  /** The error body of a refused device-code request (MSAL hands the callback empty fields). */
  deviceCodeError: Record<string, unknown> | undefined;
  /**
   * An error answer to endpoint discovery (`.../.well-known/openid-configuration`), e.g. 400
   * AADSTS90002 for a tenant that does not exist: MSAL drops it and throws endpoints_resolution_error,
   * which alone reads as a network failure.
   */
  discoveryError: { status: number; body: Record<string, unknown> } | undefined;
  private cred: Promise<Credential> | undefined;

  constructor(
    private readonly profileName: string,
    private readonly profile: Profile,
    private readonly deps: Pick<AuthDeps, 'io' | 'env' | 'store'>,
    private readonly authority: string,
  ) {}

  /** The client secret or certificate, read from the store once. */
  credential(): Promise<Credential> {
    return (this.cred ??= this.readCredential());
  }

  private async readCredential(): Promise<Credential> {
    if (this.profile.clientType === 'secret') {
      const secret = await loadClientSecret(this.deps, this.profileName, true);
      return { clientSecret: secret };
    }
    if (this.profile.clientType !== 'certificate') return {};
    const n = this.profileName;
    const pem = await this.deps.store.get(n, 'certificate');
    if (!pem) {
      throw new ConfigError(`profile ${n} needs a certificate private key and none is stored`, {
        code: 'missing_certificate',
        hint: `store it: oauthmail profile secret ${n} --certificate key-and-cert.pem`,
      });
    }
    registerSecret(pem);
    let privateKey: string;
    try {
      privateKey = createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem' }).toString();
    } catch (e) {
      throw new ConfigError(`the stored certificate of profile ${n} holds no usable private key`, {
        code: 'bad_certificate',
        hint: `store a PEM private key (and certificate): oauthmail profile secret ${n} --certificate FILE.pem`,
        cause: e,
      });
    }
    registerSecret(privateKey);
    const certMatch = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
    const tp = (this.profile.certificateThumbprint ?? '').toLowerCase();
    let x5c: string | undefined;
    if (certMatch) {
      try {
        new X509Certificate(certMatch[0]);
        x5c = certMatch[0];
      } catch {
        x5c = undefined;
      }
    }
    return {
      clientCertificate: {
        privateKey,
        ...(tp.length === 64 ? { thumbprintSha256: tp } : { thumbprint: tp }),
        ...(x5c ? { x5c } : {}),
      },
    };
  }

  /**
   * An MSAL application whose cache starts from `text` (undefined: empty, a sign-in replaces
   * the stored account). `onSlowDown`: the device-code poll was asked to slow down.
   */
  async app(text: string | undefined, onSlowDown?: (s: number) => void): Promise<MsalApp> {
    const msal = await import('@azure/msal-node');
    const { createNetworkModule } = await import('../network.js');
    const io = this.deps.io;
    const cred = await this.credential();
    const url = new URL(this.authority);
    let known = text;
    let written: string | undefined;
    const cachePlugin: ICachePlugin = {
      beforeCacheAccess: async (ctx: TokenCacheContext) => {
        if (known && parseCache(known)) ctx.tokenCache.deserialize(known);
        return Promise.resolve();
      },
      afterCacheAccess: async (ctx: TokenCacheContext) => {
        if (!ctx.cacheHasChanged) return Promise.resolve();
        known = written = ctx.tokenCache.serialize();
        parseCache(written); // registers every token in it for redaction
        return Promise.resolve();
      },
    };
    const config: Configuration = {
      auth: {
        clientId: this.profile.clientId,
        authority: this.authority,
        // an authority outside Microsoft's clouds (ADFS-like or the test provider) must be trusted explicitly
        ...(MICROSOFT_HOSTS.has(url.hostname) ? {} : { knownAuthorities: [url.host] }),
        ...cred,
      },
      cache: { cachePlugin },
      system: {
        networkClient: this.watch(
          createNetworkModule({ debug: (l) => io.debug(l), onSlowDown, retry: this.profile.retry }),
        ),
        loggerOptions: {
          piiLoggingEnabled: false,
          logLevel: io.verbose ? msal.LogLevel.Info : msal.LogLevel.Error,
          loggerCallback: (_level, message, containsPii) => {
            if (!containsPii && io.verbose) io.debug(`msal: ${message}`);
          },
        },
      },
    };
    const app =
      this.profile.clientType === 'public'
        ? new msal.PublicClientApplication(config)
        : new msal.ConfidentialClientApplication(config);
    return { app, written: () => written };
  }

  /**
   * MSAL 7 does not treat an error answer of the device-code endpoint as an error: it calls the
   * callback with undefined fields. Keep that answer so the callback can raise the real error;
   * and keep a refused discovery (see discoveryError).
   */
  private watch(net: INetworkModule): INetworkModule {
    return {
      sendGetRequestAsync: async <T>(
        url: string,
        options?: Parameters<typeof net.sendGetRequestAsync>[1],
        timeout?: number,
      ) => {
        const r = await net.sendGetRequestAsync<T>(url, options, timeout);
        if (r.status >= 400 && /\/openid-configuration$/.test(new URL(url).pathname)) {
          this.discoveryError = { status: r.status, body: r.body ?? {} };
        }
        return r;
      },
      sendPostRequestAsync: async <T>(
        url: string,
        options?: Parameters<typeof net.sendPostRequestAsync>[1],
      ) => {
        const r = await net.sendPostRequestAsync<T>(url, options);
        if (r.status >= 400 && /\/devicecode$/.test(new URL(url).pathname)) {
          this.deviceCodeError = r.body as Record<string, unknown>;
        }
        return r;
      },
    };
  }
}

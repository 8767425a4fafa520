// The admin API of the local Graph endpoint (loopback only, JSON under /_admin/; README.md here):
// queued faults (429 with Retry-After, 500, 502, 503, 504, as "Microsoft Graph throttling guidance"
// and "Microsoft Graph error responses and resource types" describe them), behaviour switches, the
// request log and the record of sends.
import { MESSAGES } from './errors.mjs';

/**
 * @param {any} state the endpoint's state (config, faults, log, sent, deltaTokens, rounds)
 * @param {(res: any, status: number, body: any) => void} send
 * @param {() => any} defaults the default config
 */
export function createAdmin(state, send, defaults) {
  async function admin(req, res, url, body) {
    const p = url.pathname;
    const json = body.length ? JSON.parse(body.toString('utf8')) : {};
    if (p === '/_admin/health') return send(res, 200, { ok: true });
    if (p === '/_admin/reset' && req.method === 'POST') {
      state.config = defaults();
      state.faults = [];
      state.log = [];
      state.sent = [];
      return send(res, 200, { ok: true });
    }
    if (p === '/_admin/config') {
      if (req.method === 'POST') {
        for (const k of Object.keys(json)) {
          if (!(k in state.config)) return send(res, 400, { error: `unknown config key '${k}'` });
          state.config[k] = Array.isArray(json[k]) ? json[k].map((v) => String(v).toLowerCase()) : json[k];
        }
      }
      return send(res, 200, state.config);
    }
    if (p === '/_admin/faults') {
      if (req.method === 'POST') {
        const f = { status: Number(json.status), times: json.times ?? 1, ...json };
        if (![429, 500, 502, 503, 504].includes(f.status))
          return send(res, 400, { error: 'status must be 429, 500, 502, 503 or 504' });
        state.faults.push(f);
      } else if (req.method === 'DELETE') state.faults = [];
      return send(res, 200, { faults: state.faults });
    }
    if (p === '/_admin/delta/expire' && req.method === 'POST') {
      const n = state.deltaTokens.size + state.rounds.size;
      state.deltaTokens.clear();
      state.rounds.clear();
      return send(res, 200, { expired: n });
    }
    if (p === '/_admin/log') return send(res, 200, { requests: state.log });
    if (p === '/_admin/sent') return send(res, 200, { sent: state.sent });
    return send(res, 404, { error: `no admin route ${req.method} ${p}` });
  }

  /** The first queued fault matching this request, used up once per match. */
  function takeFault(req, path) {
    const i = state.faults.findIndex(
      (f) => (!f.method || f.method === req.method) && (!f.path || path.includes(f.path)),
    );
    if (i < 0) return null;
    const f = state.faults[i];
    if (f.times !== 'always' && --f.times <= 0) state.faults.splice(i, 1);
    return f;
  }
  const FAULT_CODES = {
    429: ['ApplicationThrottled', MESSAGES.throttled],
    503: ['ServiceUnavailable', MESSAGES.unavailable],
    504: ['GatewayTimeout', MESSAGES.gatewayTimeout],
    500: ['InternalServerError', 'Internal server error.'],
    502: ['BadGateway', 'Bad gateway.'],
  };

  return { admin, takeFault, FAULT_CODES };
}

/**
 * The environment of a program oauthmail starts for the user (`exec`, `watch --exec`): the
 * user's own environment, minus oauthmail's secrets. A child gets only what its command
 * documents (a fresh OAUTHMAIL_ACCESS_TOKEN for `exec`, the message for `watch`), never what
 * unlocks the stored refresh token: with OAUTHMAIL_PASSPHRASE a `watch` handler that parses
 * untrusted mail could decrypt the token store, and OAUTHMAIL_CLIENT_SECRET mints new tokens.
 */

/**
 * oauthmail's secret variables: OAUTHMAIL_PASSPHRASE, OAUTHMAIL_CLIENT_SECRET, an inherited
 * OAUTHMAIL_ACCESS_TOKEN (oauthmail run under `exec`), their *_FILE forms, and any per-profile
 * variant (OAUTHMAIL_WORK_CLIENT_SECRET). Settings such as OAUTHMAIL_HEALTH_SECRET_WARN_DAYS stay.
 */
const SECRET_NAME =
  /^OAUTHMAIL_(?:[A-Z0-9]+_)*(?:PASSPHRASE|CLIENT_SECRET|PASSWORD|ACCESS_TOKEN|REFRESH_TOKEN)(?:_FILE)?$/i;

/** `env` without oauthmail's secret variables, plus `extra`. */
export function childEnv(env: NodeJS.ProcessEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !SECRET_NAME.test(k)) out[k] = v;
  }
  return { ...out, ...extra };
}

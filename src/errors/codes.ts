/**
 * Every stable error code oauthmail reports, in one list: an OauthmailError's `code`, a `test`
 * check's `code`, the `error.code` of a batch result line. A code is part of the interface
 * (scripts match on it): it is added here, never renamed. A literal that is not in this list
 * does not compile where an ErrorCode is expected.
 *
 * Codes that come from a provider are passed through as they are: Entra's AADSTS numbers, MSAL's
 * own (`msal_...`) and the `error` field of an OAuth error response (RFC 6749 §5.2), marked with
 * providerCode(). The providers' catalogues live beside their protocols (src/auth/errors/,
 * src/mail/smtp-replies.ts, src/mail/imap-replies.ts).
 */
export const ERROR_CODES = [
  // Usage and input (exit 2)
  'bad_address', 'bad_attachment', 'bad_batch_file', 'bad_batch_line', 'bad_ca', 'bad_certificate',
  'bad_date', 'bad_header', 'bad_input', 'bad_profile_name', 'bad_redirect_uri', 'bad_service_account',
  'bad_state', 'bad_usage', 'bad_value', 'cannot_create_folder', 'confirmation_needed',
  'duplicate_profile', 'header_injection', 'import_no_account', 'invalid_name', 'missing_value',
  'no_body', 'no_from', 'no_recipients', 'not_a_folder', 'not_interactive', 'paste_not_supported',
  'sendmail_bad_message', 'sendmail_usage', 'unknown_key',
  // Batches and the queue
  'batch_failed', 'batch_file_changed', 'batch_locked', 'batch_placeholder_missing',
  'batch_results_exist', 'queue_busy', 'queue_config', 'queue_dead', 'queue_deferred',
  'queue_not_found', 'queue_sign_in_needed', 'queue_waiting',
  // Configuration and profiles (exit 3)
  'client_secret_expired', 'client_secret_expiring', 'config_invalid', 'config_syntax',
  'config_unreadable', 'device_code_confidential', 'google_no_client_credentials', 'google_no_device',
  'missing_certificate', 'missing_client_secret', 'missing_secret', 'missing_service_account',
  'missing_user', 'no_authorization_endpoint', 'no_capabilities', 'no_credential',
  'no_device_endpoint', 'no_imap', 'no_profile', 'no_smtp', 'no_token_endpoint', 'no_user',
  'passphrase_file', 'profile_not_found', 'provider_not_supported', 'public_client_credentials',
  'wizard_no_client_id',
  // Secrets and locks
  'fetch_folder_taken', 'fetch_lock_lost', 'fetch_locked', 'keychain_unavailable',
  'keychain_unreachable', 'lock_compromised', 'lock_timeout', 'secret_corrupt',
  'secret_decrypt_failed', 'secret_file_corrupt', 'secret_file_insecure', 'secret_file_unsupported',
  // Sign-in and tokens (exit 4, or 6 when temporary)
  'auth_failed', 'cancelled', 'google_testing_status', 'login_timeout', 'no_access_token',
  'no_admin_consent', 'no_refresh_token', 'not_signed_in', 'redirect_address_unavailable',
  'redirect_port_in_use', 'refresh_failed', 'refresh_sign_in_needed', 'refresh_token_idle',
  'refresh_transient', 'state_mismatch',
  // OAuth 2.0 / OpenID Connect error responses (RFC 6749 §5.2, RFC 8628 §3.5, OIDC Core §3.1.2.6)
  'access_denied', 'authorization_declined', 'authorization_pending', 'consent_required',
  'entra_error', 'expired_token', 'interaction_required', 'invalid_client', 'invalid_grant',
  'invalid_request', 'invalid_scope', 'login_required', 'oauth_error', 'redirect_uri_mismatch',
  'server_error', 'slow_down', 'temporarily_unavailable', 'unauthorized_client',
  'unsupported_grant_type',
  // Google service accounts
  'sa_clock_skew', 'sa_invalid_key', 'sa_invalid_subject', 'sa_unauthorized_client',
  // Identity provider discovery, authority and the sign-in response
  'authority_uri_insecure', 'discovery_failed', 'invalid_authority', 'invalid_state',
  'issuer_mismatch', 'nonce_mismatch', 'untrusted_authority', 'url_parse_error', 'verify_transient',
  // `oauthmail exec`
  'command_not_executable', 'command_not_found',
  // SMTP
  'smtp_auth_refused', 'smtp_connect', 'smtp_ehlo', 'smtp_failed', 'smtp_greeting', 'smtp_network',
  'smtp_no_oauth', 'smtp_no_starttls', 'smtp_partial_delivery', 'smtp_refused',
  'smtp_starttls_refused', 'smtp_temporary', 'smtp_wrong_user',
  // Microsoft Graph (src/mail/graph)
  'graph_access_denied', 'graph_bad_answer', 'graph_envelope_mismatch', 'graph_foreign_link',
  'graph_invalid_user', 'graph_item_not_found', 'graph_mailbox_not_enabled', 'graph_message_too_large',
  'graph_network', 'graph_quota_exceeded', 'graph_refused', 'graph_request_too_large',
  'graph_send_as_denied', 'graph_server_error', 'graph_sync_state_not_found', 'graph_throttled',
  'graph_timeout', 'graph_token_refused', 'graph_unavailable',
  // `oauthmail relay` (src/relay)
  'bad_listen', 'relay_config_invalid', 'relay_listen', 'relay_tls_file', 'relay_tls_mismatch',
  'relay_user_exists', 'relay_user_not_found',
  // IMAP
  'imap_auth_refused', 'imap_disabled', 'imap_failed', 'imap_idle_timeout', 'imap_mailbox_not_found',
  'imap_network', 'imap_no_mechanism', 'imap_not_connected', 'imap_refused', 'imap_response_too_large',
  'imap_select_failed', 'imap_unavailable', 'imap_wrong_user',
  // TLS and the network
  'dns_failed', 'network_error', 'tls_failed', 'tls_required', 'tls_verify',
  // `oauthmail test` findings (src/diagnose/checks)
  'app_only_scope', 'graph_audience', 'graph_scopes', 'missing_role', 'missing_scope', 'test_failed',
  'token_expired', 'token_invalid', 'tokeninfo_network', 'wrong_audience',
  // Anything else
  'child_exit', 'internal', 'interrupted', 'unexpected',
] as const;

export type KnownErrorCode = (typeof ERROR_CODES)[number];

/** A code given by a provider, passed through (see providerCode). */
export type ProviderErrorCode =
  | `AADSTS${number}`
  | `msal_${string}`
  | (string & { readonly providerCode: unique symbol });

export type ErrorCode = KnownErrorCode | ProviderErrorCode;

/** Mark a provider's own error string (an OAuth `error`, an MSAL code) as a code to pass through. */
export function providerCode(code: string): ProviderErrorCode {
  return code as ProviderErrorCode;
}

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** Is `code` one of ours (not a provider's)? */
export function isKnownErrorCode(code: string): code is KnownErrorCode {
  return KNOWN.has(code);
}

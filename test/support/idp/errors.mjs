// Default texts for Entra error codes the fake IdP emits or can inject (POST /_admin/faults with errorCode).
export const ENTRA_MESSAGES = {
  16000:
    'Either multiple user identities are available for the current request or selected account is not supported for the scenario.',
  28000:
    'Provided value for the input parameter scope is not valid because it contains more than one resource.',
  50011:
    'The redirect URI specified in the request does not match the redirect URIs configured for the application.',
  50058: 'A silent sign-in request was sent but no user is signed in.',
  50076:
    'Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.',
  50126: 'Error validating credentials due to invalid username or password.',
  50148:
    'The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.',
  50173:
    'The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.',
  50196:
    'The server terminated an operation because it encountered a client request loop. Please contact your app vendor.',
  53003:
    'Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.',
  54005:
    'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
  65001:
    'The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.',
  65004: 'User declined to consent to access the app.',
  70000: 'Provided grant is invalid or malformed.',
  70003: 'The app requested an unsupported grant type.',
  70008:
    'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
  70011:
    'The provided request must include a scope input parameter. The provided value for the input parameter scope is not valid.',
  70016: 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.',
  70019: 'Verification code expired.',
  90002:
    'Tenant not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.',
  90033: 'A transient error has occurred. Please try again.',
  90014: 'The request body must contain a required parameter.',
  500011: 'The resource principal was not found in the tenant.',
  501481: 'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
  700016: 'Application was not found in the directory.',
  700025: "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
  700027: 'Client assertion failed signature validation.',
  700082: 'The refresh token has expired due to inactivity.',
  900144: 'The request body must contain a required parameter.',
  7000215:
    'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
  7000218: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
  9002313: 'Invalid request. Request is malformed or invalid.',
};

/** The OAuth `error` Entra pairs with a code when a fault names only the code. */
export const ENTRA_ERROR_FOR_CODE = {
  50058: 'login_required',
  50076: 'invalid_grant',
  50196: 'temporarily_unavailable',
  53003: 'invalid_grant',
  65001: 'invalid_grant',
  70016: 'authorization_pending',
  70019: 'expired_token',
  90033: 'temporarily_unavailable',
  700016: 'unauthorized_client',
  7000215: 'invalid_client',
  7000218: 'invalid_client',
};

export const ENTRA_SUBERROR_FOR_CODE = {
  65001: 'consent_required',
  50076: 'basic_action',
  50173: 'bad_token',
  700082: 'bad_token',
};

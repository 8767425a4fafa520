// HTML pages of the fake identity provider. Element IDs are a contract with the browser tests:
//   sign-in: #username #password #signin (+ #error on failure)
//   consent: #accept #cancel, scopes listed in #scopes > li
//   device code entry: #otc #next
//   error pages: #error with data-error / data-error-code attributes

const esc = (s) =>
  String(s ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );

function layout(title, provider, body) {
  const brand = provider === 'google' ? 'Google (fake)' : 'Microsoft (fake)';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:440px;margin:40px auto;padding:0 16px}
.brand{color:#555;font-size:14px}.err{color:#b00020;white-space:pre-wrap}
input{display:block;width:100%;margin:6px 0 12px;padding:6px;box-sizing:border-box}
button{padding:6px 16px;margin-right:8px}</style></head>
<body><div class="brand">${esc(brand)} test identity provider</div>
<h1>${esc(title)}</h1>
${body}
</body></html>`;
}

/** Sign-in form. */
export function signInPage({ provider, txn, username, error, errorCode, clientName }) {
  const err = error
    ? `<p id="error" class="err" data-error-code="${esc(errorCode ?? '')}">${esc(error)}</p>`
    : '';
  return layout(
    provider === 'google' ? 'Sign in with Google' : 'Sign in to your account',
    provider,
    `<p>to continue to <b id="client-name">${esc(clientName)}</b></p>
${err}
<form method="post" action="/_flow/login" autocomplete="off">
<input type="hidden" name="txn" value="${esc(txn)}">
<label for="username">Email or username</label>
<input id="username" name="username" type="email" value="${esc(username ?? '')}" autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password">
<button id="signin" type="submit">Sign in</button>
</form>`,
  );
}

/** Consent page listing requested scopes. */
export function consentPage({ provider, txn, user, clientName, scopes }) {
  const items = scopes.map((s) => `<li data-scope="${esc(s)}">${esc(s)}</li>`).join('\n');
  return layout(
    'Permissions requested',
    provider,
    `<p><b id="client-name">${esc(clientName)}</b> wants to access your account <b id="user">${esc(user)}</b>:</p>
<ul id="scopes">
${items}
</ul>
<form method="post" action="/_flow/consent">
<input type="hidden" name="txn" value="${esc(txn)}">
<button id="accept" name="action" value="accept" type="submit">Accept</button>
<button id="cancel" name="action" value="cancel" type="submit">Cancel</button>
</form>`,
  );
}

/** An error the user sees (no redirect), e.g. AADSTS50011 or Google's redirect_uri_mismatch. */
export function errorPage({ provider, title, error, errorCode, message, details }) {
  const d = details
    ? `<dl>${Object.entries(details)
        .map(([k, v]) => `<dt>${esc(k)}</dt><dd data-detail="${esc(k)}">${esc(v)}</dd>`)
        .join('')}</dl>`
    : '';
  return layout(
    title || (provider === 'google' ? 'Access blocked: authorization error' : 'Sign in'),
    provider,
    `<div id="error" class="err" data-error="${esc(error ?? '')}" data-error-code="${esc(errorCode ?? '')}">${esc(message)}</div>
${d}`,
  );
}

/** response_mode=form_post (OAuth 2.0 Form Post Response Mode). */
export function formPostPage(action, params) {
  const inputs = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
    .join('\n');
  return `<!doctype html><html><head><title>Working...</title></head>
<body onload="document.forms[0].submit()"><form method="post" action="${esc(action)}">
${inputs}
<noscript><button type="submit">Continue</button></noscript></form></body></html>`;
}

/** /devicelogin: enter the user code. */
export function deviceCodePage({ error }) {
  const err = error ? `<p id="error" class="err">${esc(error)}</p>` : '';
  return layout(
    'Enter code',
    'microsoft',
    `<p>Enter the code displayed on your app or device.</p>
${err}
<form method="post" action="/devicelogin" autocomplete="off">
<input id="otc" name="otc" type="text" placeholder="Code" autofocus>
<button id="next" type="submit">Next</button>
</form>`,
  );
}

/** Shown after the device flow is approved or declined. */
export function deviceDonePage({ approved, clientName }) {
  return layout(
    approved ? 'You are signed in' : 'Sign-in declined',
    'microsoft',
    approved
      ? `<p id="done" data-result="approved">You have signed in to the <b>${esc(clientName)}</b> application on your device. You may now close this window.</p>`
      : `<p id="done" data-result="declined">You declined to sign in to <b>${esc(clientName)}</b> on the other device. You may now close this window.</p>`,
  );
}

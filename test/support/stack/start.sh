#!/usr/bin/env bash
# Start the local mail stack for the oauthmail tests: Dovecot (IMAP, IMAPS, LMTP, SASL auth with a
# local-JWT oauth2 passdb), Postfix (submission with STARTTLS, SMTPS) delivering into Dovecot, and
# the fake identity provider when test/support/idp/server.mjs exists, and the local Microsoft Graph
# endpoint (test/support/graph/server.mjs) once the identity provider runs.
#
#   test/support/stack/start.sh [STACK_DIR]      (default: <repo>/.stack)
#
# On success, STACK_DIR/env holds `export` lines (ports, paths, pids) and every service has
# answered. A second start while the stack runs reuses it. Stop with stop.sh [STACK_DIR].
# Needs root (Postfix and Dovecot drop privileges themselves) and the packages of install.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
stack_dir=${1:-${OAUTHMAIL_STACK_DIR:-$repo/.stack}}
mkdir -p "$stack_dir"
stack_dir=$(cd "$stack_dir" && pwd)

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "start.sh must run as root (Postfix and Dovecot are started with their own config); run it through sudo or in CI as root"
for cmd in postfix dovecot doveadm openssl node; do
  command -v "$cmd" >/dev/null || die "$cmd is not installed; run test/support/stack/install.sh as root"
done

# --- already running? -------------------------------------------------------------------------
alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
if [[ -f $stack_dir/env ]]; then
  # shellcheck disable=SC1091
  prev=$(set +u; . "$stack_dir/env"; echo "${DOVECOT_PID:-} ${POSTFIX_PID:-} ${IDP_PID:--} ${GRAPH_PID:--}")
  read -r d p i g <<<"$prev"
  if alive "$d" && alive "$p" && { [[ $i == - ]] || alive "$i"; } && { [[ $g == - ]] || alive "$g"; }; then
    log "already running in $stack_dir (reusing it; stop it with test/support/stack/stop.sh)"
    exit 0
  fi
  log "found a stale stack in $stack_dir; stopping what is left of it"
fi
# Always clean up leftovers of an earlier run (safe when nothing runs).
bash "$here/stop.sh" "$stack_dir" >/dev/null 2>&1 || true

started_ok=0
on_exit() {
  if [[ $started_ok -ne 1 ]]; then
    log "start failed; stopping what was started. Logs: $stack_dir/logs"
    for f in "$stack_dir"/logs/*.log; do
      [[ -s $f ]] || continue
      printf -- '--- %s (last lines) ---\n' "$f" >&2
      tail -n 15 "$f" >&2
    done
    bash "$here/stop.sh" "$stack_dir" >/dev/null 2>&1 || true
  fi
}
trap on_exit EXIT

log_dir=$stack_dir/logs
rm -rf "$log_dir" "$stack_dir/env"
mkdir -p "$log_dir"
chmod 0755 "$stack_dir" "$log_dir"

# --- where unprivileged daemons can read -------------------------------------------------------
# Dovecot's auth, login and mail processes and Postfix's daemons run as their own users, so the
# folders they read must be reachable by them. A checkout under /root (mode 0700) is not, and then
# the runtime files go to a fresh folder under /tmp instead.
if runuser -u nobody -- test -x "$stack_dir" 2>/dev/null; then
  rt=$stack_dir/run
  rm -rf "$rt"
  mkdir -p "$rt"
else
  rt=$(mktemp -d /tmp/oauthmail-stack.XXXXXX)
  log "$stack_dir is not reachable by unprivileged users; runtime files go to $rt"
fi
chmod 0755 "$rt"
# Dovecot's base_dir holds unix sockets (108-byte path limit) and must be fresh on each run.
base_dir=$(mktemp -d /tmp/oauthmail-dovecot.XXXXXX)
chmod 0755 "$base_dir"
state=$stack_dir/state
cat >"$state" <<EOF
# written by start.sh; read by stop.sh
STACK_RT_DIR='$rt'
STACK_RT_IS_TMP=$([[ $rt == /tmp/* ]] && echo 1 || echo 0)
DOVECOT_BASE_DIR='$base_dir'
DOVECOT_CONF='$rt/dovecot/dovecot.conf'
POSTFIX_CONF='$rt/postfix/conf'
EOF

# --- PKI -----------------------------------------------------------------------------------------
bash "$repo/test/support/pki.sh" "$stack_dir/pki"
mkdir -p "$rt/pki"
cp "$stack_dir/pki/server.pem" "$stack_dir/pki/ca.pem" "$stack_dir/pki/jwt-pub.pem" "$rt/pki/"
install -m 0600 "$stack_dir/pki/server-key.pem" "$rt/pki/server-key.pem"
kid=$(tr -d '\n' <"$stack_dir/pki/jwt-kid")

# --- fixtures ------------------------------------------------------------------------------------
fixtures=$repo/test/support/fixtures.json
read -r tenant_id mailboxes < <(node -e '
  const f = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(f.microsoft.tenantId, f.mail.mailboxes.join(","));' "$fixtures")
IFS=, read -r -a mailbox_list <<<"$mailboxes"

# --- mail user -----------------------------------------------------------------------------------
# Dovecot refuses to access mail as uid 0; mail is owned by an unprivileged "vmail" user.
if ! id vmail >/dev/null 2>&1; then
  # (another stack starting at the same moment may win the race: then vmail exists anyway)
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail 2>/dev/null ||
    id vmail >/dev/null 2>&1 || die "could not create the vmail user"
fi
vmail_uid=$(id -u vmail)
vmail_gid=$(id -g vmail)

# --- ports ---------------------------------------------------------------------------------------
# Free loopback ports, chosen together so they differ; also free on ::1 when IPv6 loopback works
# (so "localhost" works whichever address a client resolves it to).
read -r have_v6 smtp_port smtps_port imap_port imaps_port lmtp_port auth_port < <(node -e '
  const net = require("net");
  const listen = (s, port, host) => new Promise((ok, ko) => { s.once("error", ko); s.listen(port, host, ok); });
  (async () => {
    const held = [];
    let v6 = true;
    try { const t = net.createServer(); await listen(t, 0, "::1"); held.push(t); } catch { v6 = false; }
    const ports = [];
    while (ports.length < 6) {
      const s = net.createServer();
      await listen(s, 0, "127.0.0.1");
      held.push(s);
      const port = s.address().port;
      if (v6) {
        const t = net.createServer();
        try { await listen(t, port, "::1"); held.push(t); } catch { continue; }
      }
      ports.push(port);
    }
    console.log(v6 ? 1 : 0, ...ports);
    for (const s of held) s.close();
  })().catch((e) => { console.error(e); process.exit(1); });')

if [[ $have_v6 == 1 ]]; then
  listen='127.0.0.1, ::1'
  inet_interfaces='127.0.0.1, [::1]'
  inet_protocols=all
  addrs=(127.0.0.1 '[::1]')
else
  listen=127.0.0.1
  inet_interfaces=127.0.0.1
  inet_protocols=ipv4
  addrs=(127.0.0.1)
fi

# --- templates -----------------------------------------------------------------------------------
# render IN OUT: replace every @NAME@ with the value of the shell variable tpl_NAME.
render() {
  local text name
  text=$(<"$1")
  for name in ${!tpl_*}; do
    text=${text//@${name#tpl_}@/${!name}}
  done
  if [[ $text =~ @[A-Z_0-9]+@ ]]; then die "unrendered placeholder ${BASH_REMATCH[0]} in $1"; fi
  printf '%s\n' "$text" >"$2"
}
tpl_RT=$rt
tpl_LOG_DIR=$log_dir
tpl_BASE_DIR=$base_dir
tpl_INSTANCE=oauthmail-$$
tpl_LISTEN=$listen
tpl_INET_INTERFACES=$inet_interfaces
tpl_INET_PROTOCOLS=$inet_protocols
tpl_IMAP_PORT=$imap_port
tpl_IMAPS_PORT=$imaps_port
tpl_LMTP_PORT=$lmtp_port
tpl_AUTH_PORT=$auth_port
tpl_VMAIL_UID=$vmail_uid
tpl_VMAIL_GID=$vmail_gid
tpl_AUTH_DEBUG=$([[ ${OAUTHMAIL_STACK_DEBUG:-} == 1 ]] && echo yes || echo no)
tpl_POSTFIX_CONF=$rt/postfix/conf
tpl_DEFAULT_PASSDB=''

ms_issuer="https://sts.windows.net/$tenant_id/"
google_issuer="https://accounts.google.com"
# custom-provider access tokens (test/support/idp/custom.mjs CUSTOM_TOKEN_ISSUER), scope "mail"
custom_issuer="https://custom-idp.oauthmail.test"

# --- Dovecot -------------------------------------------------------------------------------------
mkdir -p "$rt/dovecot/state" "$rt/mail" "$rt/keys/default/RS256"
cp "$stack_dir/pki/jwt-pub.pem" "$rt/keys/default/RS256/$kid"
: >"$rt/dovecot/users"
for m in "${mailbox_list[@]}"; do printf '%s:::::::nopassword nodelay\n' "${m,,}" >>"$rt/dovecot/users"; done
# One oauth2 passdb per (issuer, scope, audience) that the real service accepts. Exchange Online
# takes tokens for https://outlook.office.com or https://outlook.office365.com only: a token for
# Microsoft Graph carrying SMTP.Send is refused there (535 5.7.3), and so it is here.
# oauth2_ext NAME ISSUER SCOPE [AUDIENCE]: write NAME.conf.ext; prints the passdb block.
oauth2_ext() {
  local file=$rt/dovecot/oauth2-$1.conf.ext
  tpl_ISSUERS=$2 tpl_SCOPE=$3 tpl_ACTIVE_ATTRIBUTE=${4:+aud} tpl_ACTIVE_VALUE=${4:-} \
    render "$here/templates/oauth2.conf.ext.in" "$file"
  printf '  passdb {\n    driver = oauth2\n    mechanisms = xoauth2 oauthbearer\n    args = %s\n  }\n' "$file"
}
# the first passdb admits only the fixtures' mailboxes (see dovecot.conf.in)
mailbox_passdb="  passdb {
    driver = passwd-file
    mechanisms = xoauth2 oauthbearer
    args = username_format=%Lu $rt/dovecot/users
    result_success = continue
    result_failure = return-fail
  }
"
exchange_audiences=(https://outlook.office.com https://outlook.office365.com)
# passdbs SERVICE USER_SCOPE APP_ROLE: Microsoft delegated and app-only for each audience, then
# Google and the custom provider (whose audiences are client IDs: not checked).
passdbs() {
  local aud i=0
  printf '%s' "$mailbox_passdb"
  for aud in "${exchange_audiences[@]}"; do
    i=$((i + 1))
    oauth2_ext "microsoft-$1-$i" "$ms_issuer" "$2" "$aud"
    oauth2_ext "microsoft-$1-app-$i" "$ms_issuer" "$3" "$aud"
  done
  oauth2_ext "google-$1" "$google_issuer" https://mail.google.com/
  oauth2_ext "custom-$1" "$custom_issuer" mail
}
tpl_IMAP_PASSDBS=$(passdbs imap IMAP.AccessAsUser.All IMAP.AccessAsApp)
tpl_SMTP_PASSDBS=$(passdbs smtp SMTP.Send SMTP.SendAsApp)
render "$here/templates/dovecot.conf.in" "$rt/dovecot/dovecot.conf"
chown -R vmail:vmail "$rt/mail"
chmod -R a+rX "$rt/dovecot" "$rt/keys"
dovecot -c "$rt/dovecot/dovecot.conf"

# --- Postfix -------------------------------------------------------------------------------------
pf=$rt/postfix/conf
mkdir -p "$pf" "$rt/postfix/queue" "$rt/postfix/data"
listeners=''
for a in "${addrs[@]}"; do
  listeners+="$a:$smtp_port inet n - n - - smtpd
  -o syslog_name=oauthmail-postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
$a:$smtps_port inet n - n - - smtpd
  -o syslog_name=oauthmail-postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
"
done
tpl_LISTENERS=$listeners
render "$here/templates/postfix-main.cf.in" "$pf/main.cf"
render "$here/templates/postfix-master.cf.in" "$pf/master.cf"
: >"$pf/vmailbox"
for m in "${mailbox_list[@]}"; do printf '%s OK\n' "${m,,}" >>"$pf/vmailbox"; done
chown postfix "$rt/postfix/data"
postfix -c "$pf" start >>"$log_dir/postfix-start.log" 2>&1 || die "postfix did not start (see $log_dir/postfix-start.log)"

# --- fake identity provider ----------------------------------------------------------------------
idp_url='' idp_port='' idp_pid=''
idp_script=$repo/test/support/idp/server.mjs
if [[ -f $idp_script ]]; then
  rm -f "$stack_dir/idp-ready.json"
  node "$idp_script" --pki "$stack_dir/pki" --port 0 --ready-file "$stack_dir/idp-ready.json" \
    </dev/null >>"$log_dir/idp.log" 2>&1 &
  idp_pid=$!
  echo "IDP_PID=$idp_pid" >>"$state"
else
  log "note: $idp_script does not exist yet; starting without the fake identity provider"
fi

# --- wait until everything answers --------------------------------------------------------------
# banner PORT PATTERN: connect to 127.0.0.1:PORT and read the greeting (empty PATTERN: connect only).
banner() {
  local line=''
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  if [[ -n $2 ]]; then IFS= read -r -t 2 line <&3 || true; fi
  exec 3<&- 3>&-
  [[ -z $2 || $line == $2* ]]
}
deadline=$((SECONDS + 15))
wait_for() { # NAME PORT PATTERN
  until banner "$2" "$3"; do
    ((SECONDS < deadline)) || die "$1 on port $2 did not answer in time"
    sleep 0.1
  done
}
wait_for 'IMAP' "$imap_port" '* OK'
wait_for 'IMAPS' "$imaps_port" ''
wait_for 'LMTP' "$lmtp_port" '220'
wait_for 'Dovecot auth' "$auth_port" ''
wait_for 'SMTP submission' "$smtp_port" '220'
wait_for 'SMTPS' "$smtps_port" ''
dovecot_pid=$(<"$base_dir/master.pid")
postfix_pid=$(tr -d ' \n' <"$rt/postfix/queue/pid/master.pid")
# ready NAME PID FILE LOG: wait (in this shell, so that die stops the start) until the node server
# PID has written its ready FILE; then ready_url FILE prints "URL PORT".
ready() {
  until [[ -s $3 ]]; do
    alive "$2" || die "$1 exited (see $log_dir/$4)"
    ((SECONDS < deadline)) || die "$1 did not become ready"
    sleep 0.05
  done
}
ready_url() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(r.url, r.port);' "$1"
}
if [[ -n $idp_pid ]]; then
  ready 'the fake identity provider' "$idp_pid" "$stack_dir/idp-ready.json" idp.log
  read -r idp_url idp_port < <(ready_url "$stack_dir/idp-ready.json")
fi

# --- local Microsoft Graph endpoint ----------------------------------------------------------------
# Needs the IdP (it checks tokens against the IdP's JWKS), Postfix (delivery) and Dovecot (reads).
graph_url='' graph_port='' graph_pid=''
graph_script=$repo/test/support/graph/server.mjs
if [[ -n $idp_url && -f $graph_script ]]; then
  rm -f "$stack_dir/graph-ready.json"
  node "$graph_script" --pki "$stack_dir/pki" --idp "$idp_url" --smtp-port "$smtp_port" \
    --imaps-port "$imaps_port" --ready-file "$stack_dir/graph-ready.json" \
    </dev/null >>"$log_dir/graph.log" 2>&1 &
  graph_pid=$!
  echo "GRAPH_PID=$graph_pid" >>"$state"
  ready 'the local Graph endpoint' "$graph_pid" "$stack_dir/graph-ready.json" graph.log
  read -r graph_url graph_port < <(ready_url "$stack_dir/graph-ready.json")
fi

# --- env -----------------------------------------------------------------------------------------
q() { printf '%q' "$1"; }
{
  echo "# oauthmail test stack, written by test/support/stack/start.sh; source it"
  echo "export OAUTHMAIL_STACK=1"
  echo "export OAUTHMAIL_STACK_DIR=$(q "$stack_dir")"
  echo "export NODE_EXTRA_CA_CERTS=$(q "$stack_dir/pki/ca.pem")"
  echo "export STACK_PKI_DIR=$(q "$stack_dir/pki")"
  echo "export STACK_MAIL_DIR=$(q "$rt/mail")"
  echo "export STACK_LOG_DIR=$(q "$log_dir")"
  echo "export STACK_JWT_KID=$(q "$kid")"
  echo "export STACK_MS_ISSUER=$(q "$ms_issuer")"
  echo "export STACK_GOOGLE_ISSUER=$(q "$google_issuer")"
  echo "export IDP_URL=$(q "$idp_url")"
  echo "export IDP_PORT=$(q "$idp_port")"
  echo "export SMTP_HOST=localhost"
  echo "export SMTP_PORT=$smtp_port"
  echo "export SMTPS_PORT=$smtps_port"
  echo "export IMAP_HOST=localhost"
  echo "export IMAP_PORT=$imap_port"
  echo "export IMAPS_PORT=$imaps_port"
  echo "export LMTP_PORT=$lmtp_port"
  echo "export DOVECOT_AUTH_PORT=$auth_port"
  echo "export DOVECOT_CONF=$(q "$rt/dovecot/dovecot.conf")"
  echo "export POSTFIX_CONF_DIR=$(q "$pf")"
  echo "export DOVECOT_PID=$dovecot_pid"
  echo "export POSTFIX_PID=$postfix_pid"
  echo "export IDP_PID=$(q "$idp_pid")"
  echo "export GRAPH_URL=$(q "$graph_url")"
  echo "export GRAPH_PORT=$(q "$graph_port")"
  echo "export GRAPH_PID=$(q "$graph_pid")"
} >"$stack_dir/env.tmp"
mv "$stack_dir/env.tmp" "$stack_dir/env"
started_ok=1
log "ready in $stack_dir (submission $smtp_port, smtps $smtps_port, imap $imap_port, imaps $imaps_port${idp_url:+, idp $idp_url}${graph_url:+, graph $graph_url}); source $stack_dir/env"

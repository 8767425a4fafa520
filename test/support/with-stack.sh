#!/usr/bin/env bash
# Run a command inside the whole local test stack, then stop everything:
#   test/support/with-stack.sh CMD [ARGS...]
# - a private D-Bus session (dbus-run-session) unless one exists, with gnome-keyring's Secret
#   Service unlocked, so that keytar works;
# - Postfix, Dovecot and the fake identity provider (test/support/stack/start.sh), their
#   variables exported from STACK_DIR/env (OAUTHMAIL_STACK_DIR, default <repo>/.stack).
# Exits with CMD's exit code. The stack and the keyring daemon are stopped on every exit path
# (success, failure, Ctrl-C, SIGTERM); the D-Bus session ends with dbus-run-session.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [[ $# -eq 0 ]]; then
  echo "usage: test/support/with-stack.sh CMD [ARGS...]" >&2
  exit 2
fi

# keytar can hang ~25 s when HOME does not exist; give it a real, private one then.
tmp_home=''
if [[ -z ${HOME:-} || ! -d ${HOME:-/nonexistent} ]]; then
  tmp_home=$(mktemp -d /tmp/oauthmail-home.XXXXXX)
  export HOME=$tmp_home
fi

# A private session bus: dbus-run-session starts dbus-daemon, runs us, and stops the daemon when
# we exit. Also when a session bus address is set but dead (e.g. a stale variable in CI).
if [[ -z ${OAUTHMAIL_WITH_STACK_DBUS:-} ]]; then
  if [[ -z ${DBUS_SESSION_BUS_ADDRESS:-} ]] || ! dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId >/dev/null 2>&1; then
    command -v dbus-run-session >/dev/null || { echo "with-stack: dbus-run-session is missing; run test/support/stack/install.sh" >&2; exit 1; }
    export OAUTHMAIL_WITH_STACK_DBUS=1
    # In its own session, so that a Ctrl-C reaches only us: we pass signals on to the inner
    # with-stack (which stops the stack), and dbus-run-session then ends its dbus-daemon normally.
    exec 3<&0
    setsid dbus-run-session -- bash "${BASH_SOURCE[0]}" "$@" <&3 3<&- &
    drs=$!
    forward() { pkill -"$1" -P "$drs" -x bash 2>/dev/null || kill -"$1" "$drs" 2>/dev/null; }
    trap 'forward TERM' TERM
    trap 'forward INT' INT
    trap 'forward HUP' HUP
    rc=0
    while :; do
      wait "$drs"
      rc=$?
      kill -0 "$drs" 2>/dev/null || break
    done
    [[ -n $tmp_home ]] && rm -rf "$tmp_home"
    exit "$rc"
  fi
fi

stack_dir=${OAUTHMAIL_STACK_DIR:-$repo/.stack}
keyring_pid=''
child=''
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
  fi
  bash "$here/stack/stop.sh" "$stack_dir" >/dev/null 2>&1
  if [[ -n $keyring_pid ]] && kill -0 "$keyring_pid" 2>/dev/null; then
    kill -TERM "$keyring_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$keyring_pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$keyring_pid" 2>/dev/null
  fi
  [[ -n $tmp_home ]] && rm -rf "$tmp_home"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# gnome-keyring: unlock (creating it if needed) the login keyring with a throwaway password.
if command -v gnome-keyring-daemon >/dev/null; then
  if out=$(printf '%s' "${OAUTHMAIL_TEST_KEYRING_PASSWORD:-pw}" | gnome-keyring-daemon --unlock --components=secrets 2>/dev/null); then
    # it prints GNOME_KEYRING_CONTROL=...; the daemon registers on the session bus itself
    while IFS= read -r line; do [[ $line == *=* ]] && export "${line?}"; done <<<"$out"
    # its pid, asked from our own bus (other sessions may run keyring daemons of their own)
    # (the daemon may take a moment to claim its bus name: ask a few times)
    for _ in $(seq 40); do
      keyring_pid=$(dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
        org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null |
        awk '/uint32/ {print $2}')
      [[ -n $keyring_pid ]] && break
      sleep 0.05
    done
    [[ -n $keyring_pid ]] && export OAUTHMAIL_TEST_KEYRING=1
  else
    echo "with-stack: warning: gnome-keyring-daemon did not start; keychain tests will fail" >&2
  fi
else
  echo "with-stack: warning: gnome-keyring-daemon is not installed; keychain tests will fail" >&2
fi

bash "$here/stack/start.sh" "$stack_dir" || exit 1
set -a
# shellcheck disable=SC1091
. "$stack_dir/env"
set +a

# Run CMD in the background and wait, so that a signal to us reaches the trap at once
# (keeping our stdin: a background job would otherwise get /dev/null).
exec 3<&0
"$@" <&3 3<&- &
child=$!
wait "$child"
rc=$?
child=''
exit "$rc"

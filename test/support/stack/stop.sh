#!/usr/bin/env bash
# Stop everything start.sh started for STACK_DIR (default <repo>/.stack): the fake identity
# provider, the local Graph endpoint, Postfix and Dovecot, and wait until their processes are really gone.
# Safe to call twice, and when nothing runs. Mail and PKI stay; runtime folders are removed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
stack_dir=${1:-${OAUTHMAIL_STACK_DIR:-$repo/.stack}}
[[ -d $stack_dir ]] || exit 0
stack_dir=$(cd "$stack_dir" && pwd)

STACK_RT_DIR='' STACK_RT_IS_TMP=0 DOVECOT_BASE_DIR='' DOVECOT_CONF='' POSTFIX_CONF='' IDP_PID='' GRAPH_PID=''
# shellcheck disable=SC1091
[[ -f $stack_dir/state ]] && . "$stack_dir/state"

# a zombie counts as gone: daemons are reparented to PID 1, which may reap them late
alive() {
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -s ' \n' ' '; }
# is PID a process whose command line contains WORD? (a pid file may be stale and its pid reused)
runs() { alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"; }
# wait_gone SECONDS PID...: wait until all PIDs exit; then SIGKILL the rest and wait a bit more.
wait_gone() {
  local limit=$1 pid left
  shift
  local end=$((SECONDS + limit))
  while :; do
    left=()
    for pid in "$@"; do alive "$pid" && left+=("$pid"); done
    ((${#left[@]} == 0)) && return 0
    ((SECONDS >= end)) && break
    sleep 0.05
  done
  kill -KILL "${left[@]}" 2>/dev/null
  sleep 0.1
  return 0
}

# --- local Graph endpoint ------------------------------------------------------------------------
if [[ -n $GRAPH_PID ]] && runs "$GRAPH_PID" 'graph/server.mjs'; then
  kill -TERM "$GRAPH_PID" 2>/dev/null
  wait_gone 3 "$GRAPH_PID"
fi

# --- fake identity provider ----------------------------------------------------------------------
if [[ -n $IDP_PID ]] && runs "$IDP_PID" 'server.mjs'; then
  kill -TERM "$IDP_PID" 2>/dev/null
  wait_gone 3 "$IDP_PID"
fi

# --- Postfix -------------------------------------------------------------------------------------
if [[ -n $POSTFIX_CONF && -f $POSTFIX_CONF/main.cf ]]; then
  queue=$(postconf -c "$POSTFIX_CONF" -h queue_directory 2>/dev/null)
  pid=''
  [[ -n $queue && -f $queue/pid/master.pid ]] && pid=$(tr -d ' \n' <"$queue/pid/master.pid")
  if [[ -n $pid ]] && runs "$pid" 'master'; then
    kids=$(children "$pid")
    postfix -c "$POSTFIX_CONF" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
    # shellcheck disable=SC2086
    wait_gone 5 "$pid" $kids
  fi
fi

# --- Dovecot -------------------------------------------------------------------------------------
if [[ -n $DOVECOT_BASE_DIR && -f $DOVECOT_BASE_DIR/master.pid ]]; then
  pid=$(tr -d ' \n' <"$DOVECOT_BASE_DIR/master.pid")
  if runs "$pid" 'dovecot'; then
    kids=$(children "$pid")
    kill -TERM "$pid" 2>/dev/null
    # shellcheck disable=SC2086
    wait_gone 5 "$pid" $kids
  fi
fi

# --- runtime folders -----------------------------------------------------------------------------
[[ $DOVECOT_BASE_DIR == /tmp/oauthmail-dovecot.* ]] && rm -rf "$DOVECOT_BASE_DIR"
[[ $STACK_RT_IS_TMP == 1 && $STACK_RT_DIR == /tmp/oauthmail-stack.* ]] && rm -rf "$STACK_RT_DIR"
rm -f "$stack_dir/env" "$stack_dir/state" "$stack_dir/idp-ready.json" "$stack_dir/graph-ready.json"
exit 0

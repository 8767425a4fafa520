#!/usr/bin/env bash
# `npm run demo`: the main job end to end against the local sandbox. Starts the fake identity
# provider, Postfix, Dovecot and a keyring; creates a profile; signs in by device code; sends a
# message over SMTP XOAUTH2; fetches it back over IMAP; stops everything.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
bash test/support/bootstrap.sh
export OAUTHMAIL_STACK_DIR=${OAUTHMAIL_STACK_DIR:-$repo/.stack/demo}
exec bash test/support/with-stack.sh node test/support/demo.mjs

#!/usr/bin/env bash
# Install the Debian packages the local test stack needs (Debian 12):
#   Postfix, Dovecot (IMAP + LMTP), gnome-keyring + D-Bus (Secret Service for keytar),
#   libsecret-1-dev (keytar builds from source), Chromium (headless sign-in tests), OpenSSL.
#   msmtp, mutt, neomutt, isync (+ the XOAUTH2 SASL plugin) and git-email for the README recipe tests;
#   git-email only *recommends* libmailtools-perl (Mail::Address), which git send-email needs, and
#   we install with --no-install-recommends, so it is named here.
#   swaks and python3 (smtplib) are the relay's clients in test/integration/relay*.test.ts.
# A fast no-op when everything is there. Needs root when something is missing.
set -euo pipefail

packages=(postfix dovecot-imapd dovecot-lmtpd gnome-keyring dbus libsecret-1-dev chromium openssl procps msmtp mutt isync libsasl2-modules-kdexoauth2 git-email libmailtools-perl neomutt swaks python3 zsh fish)

missing=()
for p in "${packages[@]}"; do
  if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
    missing+=("$p")
  fi
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install.sh: missing Debian packages: ${missing[*]}" >&2
  echo "install.sh: run it as root (sudo test/support/stack/install.sh), or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install.sh: installing ${missing[*]}" >&2
# Without this, postfix's install asks which mail setup to configure (and writes /etc/postfix/main.cf);
# the stack brings its own configuration.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# Don't let the packages' maintainer scripts start system-wide daemons (Dovecot would listen on
# 143/993 with /etc/dovecot) where there is no systemd; the tests run their own instances.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  own_policy=1
fi
trap '[[ $own_policy == 1 ]] && rm -f "$policy"' EXIT
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "install.sh: apt-get failed" >&2
  exit 1
fi
rm -f "$log"
# Debian starts the daemons it installs where it can; the tests run their own instances.
for svc in postfix dovecot; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
    systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
done
echo "install.sh: done" >&2

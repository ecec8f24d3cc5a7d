#!/usr/bin/env bash
# The installed package's binary run as its systemd unit runs it (systemd
# is not PID 1 on the test machine): as the agency-sso user, with nothing of
# the caller's environment but the packaged environment files
# (/etc/agency-sso/master-key.env, then agency-sso.env, as the unit's
# EnvironmentFile= lines) and, on top, the end-to-end suite's settings for
# this run (its ports, provider and data folder), as a drop-in would set them.
#
#   end2end/release/as-service.sh ARGS...     (as root)
set -euo pipefail
envs=()
for f in /etc/agency-sso/master-key.env /etc/agency-sso/agency-sso.env; do
  [ -r "$f" ] || continue
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    envs+=("$line")
  done <"$f"
done
while IFS= read -r k; do
  case "$k" in SSO_* | LEPTOS_* | RUST_LOG) envs+=("$k=${!k}") ;; esac
done < <(compgen -e)
cd /var/lib/agency-sso
exec setpriv --reuid=agency-sso --regid=agency-sso --init-groups --no-new-privs -- \
  env -i PATH=/usr/bin:/bin "${envs[@]}" /usr/bin/agency-sso "$@"

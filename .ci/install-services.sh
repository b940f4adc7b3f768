#!/usr/bin/env bash
# Debian's PostgreSQL and HAProxy, for the store tests on PostgreSQL (tests/store/) and the
# cluster tests behind a load balancer. Idempotent and quiet: nothing happens when both are there.
# Neither is started here: the test session starts its own PostgreSQL cluster in a temporary
# folder, as the unprivileged `postgres` user on a loopback port, and stops it when the session
# ends (tests/support/postgres.py); under CI=true those tests fail, rather than skip, without it.
set -euo pipefail

have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }

if have_postgres && command -v haproxy >/dev/null 2>&1; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends postgresql haproxy >/dev/null
# Where the packages started their own system services (not in containers), stop them: the tests
# start what they need on free loopback ports, and nothing should outlive CI.
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header | awk '$4 == "online" {print $1, $2}' | while read -r version name; do
        $sudo pg_ctlcluster "$version" "$name" stop || true
    done
fi
if command -v service >/dev/null 2>&1; then
    $sudo service haproxy stop >/dev/null 2>&1 || true
fi
have_postgres
echo "installed: $(ls -d /usr/lib/postgresql/*/ | head -1) and $(haproxy -v | head -1)"

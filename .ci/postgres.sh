#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests and prints the URL to
# export as POSTGRES_TEST_URL. Needs Debian's postgresql package.
#   eval "$(.ci/postgres.sh)"      # then: go test ./...
# The cluster lives in a temporary directory, listens on loopback only and
# trusts local connections: for tests, never for data.
set -euo pipefail
port="${CALLFLOW_TEST_PG_PORT:-55432}"
# the first free port from there (another cluster may hold one)
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$bin" ]; then
  echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
dir="$(mktemp -d /tmp/callflow-pg.XXXXXX)"
run=()
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: the package's postgres user runs it.
  chown postgres "$dir"
  run=(runuser -u postgres --)
fi
"${run[@]}" "$bin/initdb" -D "$dir/data" -U callflow --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
# One role that must give a password (scram) over TCP, to prove the
# password from the environment; the tests' own role is trusted.
sed -i '1i host all callflow_pw 127.0.0.1/32 scram-sha-256' "$dir/data/pg_hba.conf"
opts="-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300"
# TLS with a certificate for 127.0.0.1, to prove sslmode=verify-full.
if command -v openssl >/dev/null 2>&1; then
  openssl req -new -x509 -days 2 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/server.key" -out "$dir/server.crt" >/dev/null 2>&1
  chmod 600 "$dir/server.key"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir/server.key" "$dir/server.crt"; fi
  opts="$opts -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
  echo "export POSTGRES_TEST_CA='$dir/server.crt'"
fi
"${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$opts" start >/dev/null
"${run[@]}" "$bin/psql" -q -h "$dir" -p "$port" -U callflow -d postgres \
  -c "CREATE ROLE callflow_pw LOGIN CREATEDB PASSWORD 'pw-from-env'" >/dev/null
echo "export POSTGRES_TEST_URL='postgres://callflow@127.0.0.1:$port/postgres?sslmode=disable'"
echo "export POSTGRES_TEST_PASSWORD_URL='postgres://callflow_pw@127.0.0.1:$port/postgres' POSTGRES_TEST_PASSWORD='pw-from-env'"
echo "# stop with: ${run[*]} $bin/pg_ctl -D $dir/data stop" >&2

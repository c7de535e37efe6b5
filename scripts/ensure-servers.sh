#!/usr/bin/env bash
# Make sure every server the test suite needs listens on loopback; install and start what
# is missing. Idempotent: a server already listening on its port is left alone.
# Prints the CONVEYOR_TEST_*_URL exports for the test run on stdout (logs go to stderr).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
state="$here/.servers"
mkdir -p "$state"
log() { echo "ensure-servers: $*" >&2; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port name seconds
  local deadline=$((SECONDS + $3))
  until listening "$1"; do
    if (( SECONDS > deadline )); then log "$2 did not start on port $1"; return 1; fi
    sleep 0.5
  done
  log "$2 is up on port $1"
}

apt_updated=""
need_packages() {  # command package...
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  [ -x "$cmd" ] && return 0
  if [ -z "$apt_updated" ]; then apt-get update -q >&2; apt_updated=1; fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}

ensure_redis() {
  listening 6379 && return 0
  need_packages redis-server redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$state" --logfile "$state/redis.log" >&2
  wait_for 6379 redis 30
}

ensure_rabbitmq() {
  listening 5672 && return 0
  need_packages rabbitmq-server rabbitmq-server
  rabbitmq-server -detached >&2
  wait_for 5672 rabbitmq 120
}

ensure_postgres() {
  if ! listening 5432; then
    need_packages pg_ctlcluster postgresql
    local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
    wait_for 5432 postgresql 60
  fi
  if command -v psql >/dev/null && ! psql -h 127.0.0.1 -U postgres -tAc "select 1" test >/dev/null 2>&1; then
    su postgres -c "psql -tAc \"create database test\"" >&2 2>/dev/null || true
  fi
}

ensure_mariadb() {
  if ! listening 3306; then
    need_packages mariadbd mariadb-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=root >&2
    wait_for 3306 mariadb 60
  fi
  mariadb -uroot -h 127.0.0.1 -e "create database if not exists test" >&2 2>/dev/null || true
}

ensure_memcached() {
  listening 11211 && return 0
  need_packages memcached memcached
  memcached -d -l 127.0.0.1 -p 11211 -U 0 -u root -P "$state/memcached.pid" >&2
  wait_for 11211 memcached 30
}

ensure_zookeeper() {
  listening 2181 && return 0
  need_packages /usr/share/zookeeper/bin/zkServer.sh zookeeper
  local dir="$state/zookeeper"
  mkdir -p "$dir/data"
  # tickTime 500 ms lets sessions (conveyor's leases) be as short as 1 s; the maximum
  # admits the default 30 s lease.
  cat > "$dir/zoo.cfg" <<CFG
tickTime=500
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=2181
clientPortAddress=127.0.0.1
minSessionTimeout=1000
maxSessionTimeout=120000
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
CFG
  JMXDISABLE=true JVMFLAGS=-Xmx256m \
    nohup /usr/share/zookeeper/bin/zkServer.sh start-foreground "$dir/zoo.cfg" \
    >"$dir/server.log" 2>&1 &
  wait_for 2181 zookeeper 60
}

for server in redis rabbitmq postgres mariadb memcached zookeeper; do
  "ensure_$server"
done

cat <<URLS
export CONVEYOR_TEST_REDIS_URL=redis://127.0.0.1:6379/0
export CONVEYOR_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672//
export CONVEYOR_TEST_POSTGRES_URL=sql+postgresql://postgres@127.0.0.1:5432/test
export CONVEYOR_TEST_MYSQL_URL=sql+mysql://root@127.0.0.1:3306/test
export CONVEYOR_TEST_MEMCACHED_URL=memcached://127.0.0.1:11211
export CONVEYOR_TEST_ZOOKEEPER_URL=zookeeper://127.0.0.1:2181/conveyor-test
URLS

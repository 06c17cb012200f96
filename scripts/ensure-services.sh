#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer where DATABASE_URL and AMQP_URL
# point (by default the local ones on 5432 and 5672), starting the local
# servers if they are installed but down. Used by .ci/run, `make run` and
# `make test`. When a server is neither reachable nor startable here, it says
# what to install or which variable to set, and exits 1, rather than failing
# on the first missing command.
set -euo pipefail

DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/docflow}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

# host and port of a URL (scheme://[user[:pass]@]host[:port][/...]).
authority() { local r=${1#*://}; r=${r##*@}; echo "${r%%[/?]*}"; }
url_host() {
    local r; r=$(authority "$1")
    if [[ $r == \[* ]]; then r=${r%%]*}; r=${r#[}; else r=${r%:*}; fi
    echo "${r:-127.0.0.1}"
}
url_port() { # URL DEFAULT
    local r; r=$(authority "$1"); r=${r##*]}
    if [[ $r == *:* ]]; then echo "${r##*:}"; else echo "$2"; fi
}
is_local() { [[ $1 == 127.0.0.1 || $1 == localhost || $1 == ::1 ]]; }
have() { command -v "$1" >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # NAME SECONDS COMMAND...
    local name=$1 seconds=$2; shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "$name did not come up within ${seconds}s" >&2
    return 1
}

pg_host=$(url_host "$DATABASE_URL"); pg_port=$(url_port "$DATABASE_URL" 5432)
mq_host=$(url_host "$AMQP_URL"); mq_port=$(url_port "$AMQP_URL" 5672)
problems=()

pg_up() {
    if have pg_isready; then pg_isready -q -h "$pg_host" -p "$pg_port"; else port_open "$pg_host" "$pg_port"; fi
}

if ! pg_up; then
    if ! is_local "$pg_host"; then
        problems+=("PostgreSQL does not answer at $pg_host:$pg_port (DATABASE_URL). Check the URL, the network and the server.")
    elif ! have pg_ctlcluster || ! ls -d /etc/postgresql/*/main >/dev/null 2>&1; then
        why="pg_ctlcluster: command not found"
        have pg_ctlcluster && why="no cluster under /etc/postgresql"
        problems+=("PostgreSQL does not answer at $pg_host:$pg_port and cannot be started here: $why.
    Install it (Debian/Ubuntu: sudo apt-get install postgresql; tested with PostgreSQL 15),
    or point DATABASE_URL at a running server (user with CREATEDB; the database is created if missing):
      export DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/docflow")
    else
        echo "starting PostgreSQL"
        # Already running on another port is not an error here: the wait says so.
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        wait_for PostgreSQL 60 pg_up || problems+=("PostgreSQL was started but does not answer at $pg_host:$pg_port (is that the cluster's port? see /etc/postgresql/*/main/postgresql.conf and /var/log/postgresql/)")
    fi
fi

mq_up() { port_open "$mq_host" "$mq_port"; }

if ! mq_up; then
    if ! is_local "$mq_host"; then
        problems+=("RabbitMQ does not answer at $mq_host:$mq_port (AMQP_URL). Check the URL, the network and the server.")
    elif ! have rabbitmq-server || ! have rabbitmqctl; then
        problems+=("RabbitMQ does not answer at $mq_host:$mq_port and cannot be started here: rabbitmq-server: command not found.
    Install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server; tested with RabbitMQ 3.10),
    or point AMQP_URL at a running broker (a user that may declare queues and exchanges):
      export AMQP_URL=amqp://USER:PASSWORD@HOST:5672/%2f")
    else
        echo "starting RabbitMQ"
        rabbitmq-server -detached || true
        wait_for RabbitMQ 120 rabbitmqctl await_startup || true
        wait_for "RabbitMQ's AMQP port" 60 mq_up || problems+=("RabbitMQ was started but does not answer at $mq_host:$mq_port; see /var/log/rabbitmq/")
    fi
fi

if [ ${#problems[@]} -gt 0 ]; then
    echo "docflow needs PostgreSQL and RabbitMQ:" >&2
    for p in "${problems[@]}"; do echo "  - $p" >&2; done
    exit 1
fi
echo "PostgreSQL ($pg_host:$pg_port) and RabbitMQ ($mq_host:$mq_port) are up"

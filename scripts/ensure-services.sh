#!/usr/bin/env bash
# Starts the local Postgres and RabbitMQ if they are not running, and waits
# until both answer. Used by .ci/run and `make run`.
set -euo pipefail

wait_for() { # NAME SECONDS COMMAND...
    local name=$1 seconds=$2; shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "$name did not come up within ${seconds}s" >&2
    return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
wait_for PostgreSQL 60 pg_isready -q -h 127.0.0.1 -p 5432

if ! port_open 5672; then
    echo "starting RabbitMQ"
    rabbitmq-server -detached
    wait_for RabbitMQ 120 rabbitmqctl await_startup
fi
wait_for "RabbitMQ's AMQP port" 60 port_open 5672
echo "PostgreSQL and RabbitMQ are up"

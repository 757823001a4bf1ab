#!/usr/bin/env bash
# The test suite: every package, then the race detector on what runs goroutines against shared
# state: the supervisor's API, the endpoints, the observers, and the whole supervisor package
# (its topology loop, failovers, rejoins and rotations with status polled meanwhile).
set -euo pipefail
cd "$(dirname "$0")/.."
go test -count=1 -timeout 20m ./...
go test -race -count=1 -timeout 10m ./internal/twin/api ./internal/twin/endpoint ./internal/twin/observe/...
go test -race -count=1 -timeout 20m ./internal/twin/supervisor

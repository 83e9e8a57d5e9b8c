#!/bin/bash
# CPU per attempt of the dialer workers and of PostgreSQL's backends over a window of a running
# benchmarks/national.py (its newest database), read from /proc: the cost while the channels are busy,
# which national.py's whole-week figure mixes with idle polling and daily restarts.
#
#     benchmarks/cpu_window.sh 60      # while national.py is in a calling day
set -euo pipefail
seconds=${1:-60}
psql_at() { psql -h 127.0.0.1 -p "${PGPORT:-55432}" -U safecall -d "$1" -Atc "$2"; }
ticks() {  # utime + stime, in clock ticks, of the processes whose command line matches $1
    local total=0 pid fields
    for pid in $(pgrep -f "$1"); do
        fields=($(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null || true))
        total=$((total + ${fields[11]:-0} + ${fields[12]:-0}))
    done
    echo "$total"
}
db=$(psql_at postgres "SELECT datname FROM pg_database WHERE datname LIKE 'safecall_national%' ORDER BY oid DESC LIMIT 1")
attempts0=$(psql_at "$db" "SELECT count(*) FROM attempt"); workers0=$(ticks "worker run"); pg0=$(ticks "postgres: safecall $db")
sleep "$seconds"
attempts1=$(psql_at "$db" "SELECT count(*) FROM attempt"); workers1=$(ticks "worker run"); pg1=$(ticks "postgres: safecall $db")
hz=$(getconf CLK_TCK)
python3 -c "
a = $attempts1 - $attempts0
print(f'attempts {a} in $seconds s; per attempt: workers {($workers1 - $workers0) * 1000 / $hz / a:.2f} ms, PostgreSQL {($pg1 - $pg0) * 1000 / $hz / a:.2f} ms')"

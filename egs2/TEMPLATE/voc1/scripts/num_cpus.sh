#!/usr/bin/env bash
# num_cpus.sh: print how many CPUs this process may use (its affinity mask; cgroup quota where
# coreutils reads it), ignoring OMP_NUM_THREADS and OMP_THREAD_LIMIT.
#
# Usage: scripts/num_cpus.sh
# GNU nproc honours those variables, and path.sh exports OMP_NUM_THREADS=1 (one thread per job),
# so a plain `nproc` says 1 on every machine and the local backend would run one job at a time.
# This is the one place the local backend (run_local.sh) and decoding (decode.sh) count CPUs.
set -euo pipefail
env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1

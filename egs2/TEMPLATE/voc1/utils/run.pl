#!/usr/bin/env perl
# run.pl: Kaldi's local job launcher, mapped onto the project's scripts/run_local.sh.
#
# Usage (Kaldi's): utils/run.pl [options] [JOB=1:N] <log-file> <command> [<arg> ...]
#   Options are Kaldi's spelling or ours (--max-jobs-run N = --max_jobs_run N, --num-threads N,
#   --gpu N, --mem X, --time T, --config F; "-" and "_" are the same): --max-jobs-run caps the
#   jobs run at once (default: the CPUs, scripts/num_cpus.sh), --num-threads sets each job's
#   OMP/MKL threads; the others mean nothing on one machine and are ignored, as run.pl does.
#   JOB=1:N, the log path and the command are scripts/run_local.sh's (= Kaldi's).
# So a site cmd.sh with `export train_cmd="run.pl"` (utils/ on PATH, or "utils/run.pl") works.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $backend = dirname(abs_path($0)) . "/../scripts/run_local.sh";
-f $backend || die "run.pl: $backend not found (utils/ must be the project's, linked with scripts/)\n";
exec("bash", $backend, @ARGV) || die "run.pl: cannot run $backend: $!\n";

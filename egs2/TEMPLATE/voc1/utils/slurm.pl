#!/usr/bin/env perl
# slurm.pl: Kaldi's SLURM job launcher, mapped onto the project's scripts/slurm.sh.
#
# Usage (Kaldi's): utils/slurm.pl [options] [JOB=1:N] <log-file> <command> [<arg> ...]
#   scripts/slurm.sh has Kaldi's slurm.pl semantics: --config F (Kaldi's "command/option/default"
#   slurm.conf lines; default: conf/slurm.conf-like built-in), --max-jobs-run N, --gpu N,
#   --mem X, --num-threads N, --time T ("-" and "_" are the same in names); JOB=1:N job arrays,
#   per-job logs with the accounting lines, exit 1 naming the failed jobs' logs.
# So a site cmd.sh with `export cuda_cmd="slurm.pl --gpu 1"` works.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $backend = dirname(abs_path($0)) . "/../scripts/slurm.sh";
-f $backend || die "slurm.pl: $backend not found (utils/ must be the project's, linked with scripts/)\n";
exec("bash", $backend, @ARGV) || die "slurm.pl: cannot run $backend: $!\n";

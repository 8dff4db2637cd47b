#!/usr/bin/env perl
# queue.pl: Kaldi's Sun Grid Engine (qsub) launcher name. SGE is not supported by this project:
# the jobs run on a backend it has, with a warning on stderr:
#   VOC_QUEUE_BACKEND=local (default): scripts/run_local.sh, on this machine;
#   VOC_QUEUE_BACKEND=slurm: scripts/slurm.sh (SLURM, with conf/slurm.conf when the recipe has one).
#
# Usage (Kaldi's): utils/queue.pl [options] [JOB=1:N] <log-file> <command> [<arg> ...]
#   Kaldi's options (--mem X, --gpu N, --num-threads N, --max-jobs-run N, --config F, --time T)
#   pass through, and raw qsub options (-q all.q, -l mem_free=2G, -pe smp 4, -V) are dropped:
#   they mean nothing to either backend. A --config naming a Kaldi queue.conf is dropped too
#   (its qsub lines mean nothing to SLURM).
# So a site cmd.sh with `export train_cmd="queue.pl --mem 2G"` runs (on this machine by default).
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $choice = $ENV{VOC_QUEUE_BACKEND} // "local";
my %backends = (local => "run_local.sh", slurm => "slurm.sh");
exists $backends{$choice} || die "queue.pl: VOC_QUEUE_BACKEND must be local or slurm, got '$choice'\n";
my $backend = dirname(abs_path($0)) . "/../scripts/$backends{$choice}";
-f $backend || die "queue.pl: $backend not found (utils/ must be the project's, linked with scripts/)\n";

my (@args, @dropped);
while (@ARGV) {
    my $arg = $ARGV[0];
    if ($arg =~ /^--config(=(.*))?$/) {  # a Kaldi queue.conf speaks qsub
        my $file = defined $1 ? $2 : $ARGV[1];
        splice(@ARGV, 0, defined $1 ? 1 : 2);
        push @dropped, "--config $file";
    } elsif ($arg =~ /^--[^=]+=/) {
        push @args, shift @ARGV;
    } elsif ($arg =~ /^--/) {
        @ARGV >= 2 || die "queue.pl: option $arg needs a value\n";
        push @args, splice(@ARGV, 0, 2);
    } elsif ($arg eq "-pe") {  # -pe <env> <slots>
        push @dropped, join(" ", splice(@ARGV, 0, 3));
    } elsif ($arg =~ /^-(V|cwd|sync)$/) {
        push @dropped, shift @ARGV;
    } elsif ($arg =~ /^-[A-Za-z]/) {  # -q <queue>, -l <resource>, ...
        push @dropped, join(" ", splice(@ARGV, 0, 2));
    } else {
        last;
    }
}
my $note = @dropped ? " (qsub options dropped: @dropped)" : "";
print STDERR "queue.pl: [warning] SGE is not supported here; running with scripts/$backends{$choice}$note"
  . " (set VOC_QUEUE_BACKEND=slurm for SLURM, or use run.pl/slurm.pl in cmd.sh)\n";
exec("bash", $backend, @args, @ARGV) || die "queue.pl: cannot run $backend: $!\n";

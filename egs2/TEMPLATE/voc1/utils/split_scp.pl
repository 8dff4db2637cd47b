#!/usr/bin/env perl
# split_scp.pl: split a table into contiguous parts (Kaldi's utils/split_scp.pl, its basic forms).
#
# Usage: utils/split_scp.pl <in.scp> <out.1> [<out.2> ...]
#        utils/split_scp.pl -j <num-jobs> <job-id> [--one-based] <in.scp> [<out.scp>]
#   The first form writes every part; the k-th of N parts gets floor(L/N) lines, one more for
#   the first L mod N parts (L: lines of <in.scp>), in the input order. The -j form writes only
#   part <job-id> (0-based; 1-based with --one-based) to <out.scp>, or stdout.
#   Asking for more parts than lines is an error. --utt2spk/--utt2dur (splitting on speaker
#   boundaries) are not provided here: link Kaldi's utils/ for them (setup.sh --utils kaldi).
use strict;
use warnings;

my ($num_jobs, $job_id, $one_based) = (0, 0, 0);
while (@ARGV) {
    if ($ARGV[0] eq "-j") {
        @ARGV >= 3 || die "split_scp.pl: -j needs <num-jobs> <job-id>\n";
        (undef, $num_jobs, $job_id) = splice(@ARGV, 0, 3);
        next;
    }
    if ($ARGV[0] eq "--one-based") { $one_based = 1; shift @ARGV; next; }
    if ($ARGV[0] =~ /^--utt2(spk|dur)=/) {
        die "split_scp.pl: $ARGV[0] (speaker-boundary splits) is not provided by this utils/; use Kaldi's (setup.sh --utils kaldi)\n";
    }
    last;
}
my $usage = "usage: split_scp.pl <in.scp> <out.1> [<out.2> ...]\n"
  . "   or: split_scp.pl -j <num-jobs> <job-id> [--one-based] <in.scp> [<out.scp>]\n";
my @outputs;
my $in;
if ($num_jobs) {
    ($num_jobs =~ /^[1-9][0-9]*$/ && $job_id =~ /^[0-9]+$/) || die $usage;
    $job_id -= $one_based;
    ($job_id >= 0 && $job_id < $num_jobs) || die "split_scp.pl: job id out of range for -j $num_jobs\n";
    (@ARGV == 1 || @ARGV == 2) || die $usage;
    $in = shift @ARGV;
    @outputs = map { $_ == $job_id ? ($ARGV[0] // "-") : undef } 0 .. $num_jobs - 1;
} else {
    @ARGV >= 2 || die $usage;
    $in = shift @ARGV;
    @outputs = @ARGV;
}
open(my $fh, "<", $in) || die "split_scp.pl: cannot open $in: $!\n";
my @lines = <$fh>;
close($fh);
my $n = @lines;
my $k = @outputs;
$n > 0 || die "split_scp.pl: $in is empty\n";
my $per = int($n / $k);
$per >= 1 || die "split_scp.pl: cannot split $in ($n lines) into $k parts: you are splitting into too many pieces (reduce nj)\n";
my $extra = $n - $per * $k;
my $pos = 0;
for my $i (0 .. $k - 1) {
    my $count = $per + ($i < $extra ? 1 : 0);
    my $out = $outputs[$i];
    if (defined $out) {
        my $oh;
        if ($out eq "-") { open($oh, ">&", \*STDOUT) || die "split_scp.pl: cannot write stdout: $!\n"; }
        else { open($oh, ">", $out) || die "split_scp.pl: cannot write $out: $!\n"; }
        print $oh @lines[$pos .. $pos + $count - 1];
        close($oh) || die "split_scp.pl: cannot write $out: $!\n";
    }
    $pos += $count;
}

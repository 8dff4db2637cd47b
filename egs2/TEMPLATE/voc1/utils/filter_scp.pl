#!/usr/bin/env perl
# filter_scp.pl: keep the lines of a table whose id is listed (Kaldi's utils/filter_scp.pl).
#
# Usage: utils/filter_scp.pl [--exclude] [-f <field>] <id-list> [<in.scp>] > <out.scp>
#   Prints the lines of <in.scp> (stdin without it) whose <field>-th field (1-based; default 1,
#   the utterance id) is the first field of some line of <id-list>; with --exclude, those
#   whose field is not. Line order and content are kept as they are.
# Example: utils/filter_scp.pl data/dev/utt2spk data/all/wav.scp > data/dev/wav.scp
use strict;
use warnings;

my ($exclude, $field) = (0, 1);
while (@ARGV) {
    if ($ARGV[0] eq "--exclude") { $exclude = 1; shift @ARGV; next; }
    if ($ARGV[0] eq "-f") {
        @ARGV >= 2 || die "filter_scp.pl: option -f needs a field number\n";
        (undef, $field) = splice(@ARGV, 0, 2);
        $field =~ /^[1-9][0-9]*$/ || die "filter_scp.pl: -f needs a field number 1, 2, ... (1-based), got '$field'\n";
        next;
    }
    last;
}
if (@ARGV < 1 || @ARGV > 2) {
    die "usage: filter_scp.pl [--exclude] [-f <field>] <id-list> [<in.scp>] > <out.scp>\n";
}
my $list = shift @ARGV;
my %keep;
open(my $lf, "<", $list) || die "filter_scp.pl: cannot open id list $list: $!\n";
while (<$lf>) {
    my @fields = split;
    next unless @fields;
    $keep{$fields[0]} = 1;
}
close($lf);
while (<>) {
    my @fields = split;
    @fields >= $field || die "filter_scp.pl: line $. of " . ($ARGV // "stdin") . " has no field $field: $_";
    my $listed = exists $keep{$fields[$field - 1]};
    print if $listed != $exclude;
}

#!/usr/bin/env perl
# spk2utt_to_utt2spk.pl: spk2utt -> utt2spk (Kaldi's utils/spk2utt_to_utt2spk.pl).
#
# Usage: utils/spk2utt_to_utt2spk.pl [<spk2utt>...] > <utt2spk>
#   Reads stdin without a file; one "<utt> <spk>" line per utterance, in spk2utt order.
use strict;
use warnings;

while (<>) {
    my ($spk, @utts) = split;
    next unless defined $spk;
    @utts || die "spk2utt_to_utt2spk.pl: line $. of " . ($ARGV // "stdin") . ": speaker $spk has no utterance\n";
    print "$_ $spk\n" for @utts;
}

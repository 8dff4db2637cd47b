#!/usr/bin/env perl
# utt2spk_to_spk2utt.pl: utt2spk -> spk2utt (Kaldi's utils/utt2spk_to_spk2utt.pl).
#
# Usage: utils/utt2spk_to_spk2utt.pl [<utt2spk>...] > <spk2utt>
#   Reads stdin without a file. Speakers come in the order of their first utterance, each
#   speaker's utterances in utt2spk order (a sorted utt2spk gives a sorted spk2utt when
#   speaker ids are prefixes of utterance ids, as Kaldi requires).
use strict;
use warnings;

my (@speakers, %utts);
while (<>) {
    my @fields = split;
    next unless @fields;
    @fields == 2 || die "utt2spk_to_spk2utt.pl: line $. of " . ($ARGV // "stdin") . ": expected '<utt> <spk>', got: $_";
    my ($utt, $spk) = @fields;
    push @speakers, $spk unless exists $utts{$spk};
    push @{ $utts{$spk} }, $utt;
}
print join(" ", $_, @{ $utts{$_} }), "\n" for @speakers;

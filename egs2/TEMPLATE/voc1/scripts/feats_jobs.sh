# feats_jobs.sh: the job outputs of voc.sh stage 3 (feature extraction); sourced after
# scripts/common.sh, not run. It defines:
#   merge_feats_jobs <set> <dump dir> <logdir> <jobs> <tmp>
#       the jobs' feats.N.scp, utt2num_frames.N and feats_conf.N.yaml (in <logdir>; their arks in
#       <tmp>, from stage_dir_begin <dump dir>/feats) checked and merged, then swapped in:
#       -> <dump dir>/{feats.scp,utt2num_frames,feats_conf.yaml,feats/feats.N.ark}
#   feats_speed <logdir>
#       seconds of audio per CPU-second, summed over the jobs' "speed:" log lines
# shellcheck shell=bash

# merge_feats_jobs <set> <dump dir> <logdir> <jobs> <tmp>
merge_feats_jobs() {
    local dset="$1" dump="$2" logdir="$3" nj="$4" tmp="$5" n
    for n in $(seq 2 "${nj}"); do
        cmp -s "${logdir}/feats_conf.1.yaml" "${logdir}/feats_conf.${n}.yaml" \
            || fail "${dset}: jobs 1 and ${n} used different feature settings (${logdir}/feats_conf.*.yaml)"
    done
    cp "${logdir}/feats_conf.1.yaml" "${tmp}/feats_conf.yaml"
    for n in $(seq "${nj}"); do cat "${logdir}/utt2num_frames.${n}"; done | sort >"${tmp}/utt2num_frames"
    for n in $(seq "${nj}"); do cat "${logdir}/feats.${n}.scp"; done | sort >"${tmp}/feats.scp"
    cmp -s <(awk '{ print $1 }' "${tmp}/feats.scp") <(awk '{ print $1 }' "${dump}/wav.scp") \
        || fail "${dset}: the utterances of the features and of ${dump}/wav.scp differ"
    # The old index files go first (a crash in between leaves no feats.scp, never a wrong one);
    # arks of older layouts (data/feats.N.ark) with them.
    rm -f "${dump}/feats.scp" "${dump}/utt2num_frames" "${dump}/feats_conf.yaml" "${dump}"/data/feats.*.ark
    stage_dir_commit "${tmp}" "${dump}/feats" "" feats.scp
    mv "${dump}/feats/feats_conf.yaml" "${dump}/feats/utt2num_frames" "${dump}/"
    mv "${dump}/feats/feats.scp" "${dump}/feats.scp"
}

# feats_speed <logdir>
feats_speed() {
    grep -h 'speed:' "$1"/extract_feats.*.log | tr ' ' '\n' | awk -F= '
        $1 == "audio_sec" { a += $2 } $1 == "cpu_sec" { c += $2 } $1 == "wall_sec" && $2 > w { w = $2 }
        END { printf("%.1f s of audio in %.2f CPU-s (%.1f s of audio per CPU-second), longest job %.2f s", a, c, a / (c > 0 ? c : 1e-9), w) }'
}

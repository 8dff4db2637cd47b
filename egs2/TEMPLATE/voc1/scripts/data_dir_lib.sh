# data_dir_lib.sh: what the project's Kaldi-compatible utils/ data-directory scripts share
# (utils/fix_data_dir.sh, subset_data_dir.sh, copy_data_dir.sh, combine_data.sh); sourced by
# them, not run. Kaldi's own utils/ (setup.sh --utils kaldi) does not need it. It defines:
#   DATA_UTT_FILES, DATA_SPK_FILES, DATA_RECO_FILES   which files of a data directory are keyed by
#                                         utterance, speaker or recording (wav.scp: by utterance
#                                         without segments, by recording with them)
#   data_sort_unique <file>               sort a table on its first field (LC_ALL=C), one line per id
#   data_subset <src> <dest> <utt-list>   write into <dest> the utterances of <src> listed in the
#                                         first field of <utt-list> (each table filtered, line
#                                         order kept), the recordings their segments use, the
#                                         speakers left, and spk2utt rebuilt from utt2spk
# The caller sets utils_dir (the directory of utils/filter_scp.pl and utt2spk_to_spk2utt.pl) and
# LC_ALL=C.
# shellcheck shell=bash disable=SC2154  # utils_dir: set by the caller

DATA_UTT_FILES="utt2spk text feats.scp vad.scp segments utt2lang utt2dur utt2num_frames utt2num_samples utt2uniq utt2warp utt2category"
DATA_SPK_FILES="spk2gender cmvn.scp spk2warp spk2lang"
DATA_RECO_FILES="reco2file_and_channel reco2dur"

# data_sort_unique <file>
data_sort_unique() {
    LC_ALL=C sort -k1,1 -u "$1" >"$1.sorted"
    mv "$1.sorted" "$1"
}

# data_subset <src> <dest> <utt-list>
data_subset() {
    local src="$1" dest="$2" list="$3" f
    [ -f "${src}/utt2spk" ] || { echo "no ${src}/utt2spk" >&2; return 1; }
    mkdir -p "${dest}"
    for f in ${DATA_UTT_FILES}; do
        if [ -f "${src}/${f}" ]; then
            "${utils_dir}/filter_scp.pl" "${list}" "${src}/${f}" >"${dest}/${f}.new"
            mv "${dest}/${f}.new" "${dest}/${f}"
        fi
    done
    if [ -f "${src}/segments" ]; then
        awk '{ print $2 }' "${dest}/segments" | LC_ALL=C sort -u >"${dest}/.recordings"
        for f in wav.scp ${DATA_RECO_FILES}; do
            if [ -f "${src}/${f}" ]; then
                "${utils_dir}/filter_scp.pl" "${dest}/.recordings" "${src}/${f}" >"${dest}/${f}.new"
                mv "${dest}/${f}.new" "${dest}/${f}"
            fi
        done
        rm -f "${dest}/.recordings"
    elif [ -f "${src}/wav.scp" ]; then
        "${utils_dir}/filter_scp.pl" "${list}" "${src}/wav.scp" >"${dest}/wav.scp.new"
        mv "${dest}/wav.scp.new" "${dest}/wav.scp"
    fi
    "${utils_dir}/utt2spk_to_spk2utt.pl" "${dest}/utt2spk" >"${dest}/spk2utt.new"
    mv "${dest}/spk2utt.new" "${dest}/spk2utt"
    for f in ${DATA_SPK_FILES}; do
        if [ -f "${src}/${f}" ]; then
            "${utils_dir}/filter_scp.pl" "${dest}/spk2utt" "${src}/${f}" >"${dest}/${f}.new"
            mv "${dest}/${f}.new" "${dest}/${f}"
        fi
    done
}

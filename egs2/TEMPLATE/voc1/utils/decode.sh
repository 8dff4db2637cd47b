# decode.sh: decoding with a vocoder experiment, shared by voc.sh (stage 6) and chain.sh (stages 2
# and 5); sourced after utils/common.sh, not run. It defines:
#   select_job_cmd <true|false>
#       job_cmd (array): cuda_cmd --gpu 1 when true, else decode_cmd; job_ngpu: 1 or 0
#   decode_feats_scp <name> <feats.scp> <out dir> <train_config> <model_file> [<arg> ...]
#       split <feats.scp> (utils/split_scp.sh) into min(inference_nj, utterances) jobs, run
#       python -m espnet_hifigan.bin.voc_inference on them (on a GPU if gpu_inference is true;
#       <arg>s are more voc_inference options) and merge their outputs (utils/merge_decode_dirs.py)
#       -> <out dir>/{wav/,wav.scp,timing.json}; logs in <out dir>/logdir/inference.*.log. The
#       outputs are built aside (stage_dir_begin) and replace <out dir> when complete; when the
#       decoding fails, an earlier decoding in <out dir> moves to <out dir>.previous (so that
#       it does not pass for this one) and <out dir> keeps only the failed attempt's logdir/
#   decode_failed <out dir> <message...>
#       that move, then fail with the message
#   inference_config_args <yaml>
#       print the voc_inference options of an inference config (YAML of option: value) as
#       "--option" and "value" lines (booleans as true/false, None as null)
# The caller sets python_arr, cuda_cmd_arr, decode_cmd_arr (the commands as arrays),
# gpu_inference and inference_nj.
# shellcheck shell=bash disable=SC2154  # python_arr, ...: set by the caller

# select_job_cmd <true|false>
select_job_cmd() {
    if "$1"; then
        job_cmd=("${cuda_cmd_arr[@]}" --gpu 1)
        job_ngpu=1
    else
        job_cmd=("${decode_cmd_arr[@]}")
        job_ngpu=0
    fi
}

# decode_feats_scp <name> <feats.scp> <out dir> <train_config> <model_file> [<arg> ...]
decode_feats_scp() {
    local name="$1" scp="$2" out="$3" config="$4" model="$5"
    shift 5
    local logdir="${out}/logdir" nj n output_dirs=() tmp
    [ -f "${scp}" ] || fail "${scp} not found"
    stage_dir_begin "${out}"
    tmp="${stage_tmp}"
    rm -rf "${logdir}"
    mkdir -p "${logdir}"
    nj="$(split_for_jobs "${scp}" "${inference_nj}" "${logdir}/feats.JOB.scp")"
    select_job_cmd "${gpu_inference}"
    log "${name}: ${scp} ($(nlines "${scp}") utterances), ${nj} jobs, logs in ${logdir}/inference.*.log"
    "${job_cmd[@]}" JOB=1:"${nj}" "${logdir}/inference.JOB.log" \
        "${python_arr[@]}" -m espnet_hifigan.bin.voc_inference --ngpu "${job_ngpu}" \
        --train_config "${config}" --model_file "${model}" \
        --feats_scp "${logdir}/feats.JOB.scp" --output_dir "${logdir}/output.JOB" \
        --origin_scp "${scp}" "$@" \
        || decode_failed "${out}" "decoding ${name} failed; see ${logdir}/inference.*.log"
    for n in $(seq "${nj}"); do
        output_dirs+=("${logdir}/output.${n}")
    done
    "${python_arr[@]}" utils/merge_decode_dirs.py --output_dir "${tmp}" "${output_dirs[@]}" \
        || decode_failed "${out}" "merging the decoding jobs of ${name} failed (see above)"
    stage_dir_commit "${tmp}" "${out}" logdir wav.scp
    log "${name}: $(nlines "${out}/wav.scp") wavs in ${out}/wav/"
}

# decode_failed <out dir> <message...>
decode_failed() {
    local out="$1"
    shift
    if [ -f "${out}/wav.scp" ]; then
        mv "${out}/logdir" "${out}.logdir.$$"
        rm -rf "${out}.previous"
        stage_dir_commit "${out}" "${out}.previous" "" wav.scp
        mkdir -p "${out}"
        mv "${out}.logdir.$$" "${out}/logdir"
        fail "$* (the earlier decoding in ${out} is now in ${out}.previous)"
    fi
    fail "$*"
}

# inference_config_args <yaml>
inference_config_args() {
    "${python_arr[@]}" -c '
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    for key, value in (yaml.safe_load(f) or {}).items():
        print(f"--{key}")
        print("null" if value is None else str(value).lower() if isinstance(value, bool) else value)
' "$1"
}

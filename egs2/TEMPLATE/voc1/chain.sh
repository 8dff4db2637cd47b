#!/usr/bin/env bash
# chain.sh: chain a HiFi-GAN vocoder (espnet-hifigan) after an ESPnet acoustic model (egs2/*/tts1).
# Run it from a voc1 recipe directory (path.sh, cmd.sh, utils/); voc.sh calls it as its stages
# 9-13 when given --tts_exp, or run it alone.
#
# Usage: ./chain.sh --tts_exp DIR --voc_exp DIR [options]
#        ./chain.sh --tts_exp DIR --pretrained_model SRC [options]   (a published vocoder, no stage 5 of ours)
#
# Stages (--stage N / --stop_stage N select a range):
#   1 contract     the TTS's features (<tts_exp>/config.yaml: feats_extract_conf + LogMelFbank's
#                  conventions, normalize + stats) against the vocoder's; any difference but
#                  normalisation stops here with a table of the differing fields
#                  -> <chain_dir>/tts_feature_contract.yaml
#   2 decode       the TTS outputs <tts_exp>/<decode>/<set>/{denorm,norm}/feats.scp (the one that fits
#                  the vocoder's contract; normalised mels are de-normalised with the TTS stats)
#                  -> <chain_dir>/decode_<model>/<decode>/<set>/{wav/,wav.scp,timing.json}
#   3 gta          teacher-forced mels: python -m espnet2.bin.tts_inference --use_teacher_forcing true
#                  on --gta_train_set and --gta_valid_set (<tts_data_dir>/<set>/{text,wav.scp}),
#                  then lengths reconciled with the audio (espnet_hifigan.bin.gta align)
#                  -> <chain_dir>/gta/<set>/{feats.scp,wav.scp,speech_shape,gta_report.tsv,...}
#   4 finetune     the vocoder fine-tuned from its checkpoint on (GTA mel, audio) pairs with
#                  --finetune_config -> <finetune_exp>/
#   5 decode       the TTS outputs again, with the fine-tuned vocoder
#                  -> <finetune_exp>/chain_<tts>/decode_<model>/<decode>/<set>/
#   (<tts> = <basename of tts_exp>_<first 8 hex digits of the sha256 of its absolute path>, so that
#   two TTS experiments of the same name get their own directories; <chain_dir> =
#   <voc_exp>/chain_<tts>. <chain_dir>/tts_exp and <finetune_exp>/tts_exp record the TTS
#   experiment; a directory recorded for another one is refused.)
#
# Options:
#   --stage N, --stop_stage N   stage range (default: 1, 10000)
#   --python CMD                Python interpreter (default: python3)
#   --ngpu N                    GPUs for fine-tuning and GTA inference (default: 0)
#   --gpu_inference BOOL        decode on a GPU (default: false)
#   --inference_nj N            parallel jobs of decoding and GTA inference (default: 4; decoding
#                               on the CPU with the local backend: at most the CPU count, scripts/num_cpus.sh;
#                               each job with CPUs / jobs torch threads)
# The TTS:
#   --tts_exp DIR               ESPnet TTS experiment with config.yaml (required)
#   --tts_inference_model F     its checkpoint for teacher forcing (default: train.loss.ave.pth, as tts.sh)
#   --tts_decode_dirs "A B"     TTS output sets to decode, <decode>/<set> relative to --tts_exp
#                               (default: every decode_*/<set> with norm/ or denorm/feats.scp, except
#                               teacher-forced ones)
#   --tts_recipe_dir DIR        the TTS's recipe directory, where its relative paths (token list,
#                               statistics, wav.scp entries) hold (default: two levels above --tts_exp)
#   --tts_data_dir DIR          the TTS's data sets: DIR/<set>/{text,wav.scp}
#                               (default: <tts_recipe_dir>/dump/raw)
#   --tts_inference_args STR    extra options of espnet2.bin.tts_inference for stage 3 (default: "")
#   --gta_extra_data "A B"      extra tts_inference inputs "path,name,type", {set} replaced by the set
#                               (e.g. "dump/xvector/{set}/xvector.scp,spembs,kaldi_ark") (default: "")
# The vocoder:
#   --voc_exp DIR               vocoder experiment with config.yaml (required)
#   --inference_model F         its checkpoint (default: the config's first best_model_criterion)
#   --pretrained_model SRC      instead of our own experiment: a published HiFi-GAN (official g_XXXXXXXX,
#                               ParallelWaveGAN checkpoint-*.pkl, ESPnet joint_text2wav model) converted
#                               with its discriminators into --voc_exp (convert_checkpoint --for_training;
#                               default exp/voc_pretrained_<basename of SRC>), decoded and fine-tuned
#                               from its model.pth directly (default: "")
#   --pretrained_discriminator F  the official do_XXXXXXXX of --pretrained_model (default: next to it)
#   --inference_args STR        extra options of espnet_hifigan.bin.voc_inference (default: "")
# Teacher forcing and fine-tuning:
#   --gta_train_set NAME        TTS data set to fine-tune on (required for stages 3-5)
#   --gta_valid_set NAME        TTS data set to validate on (required for stages 3-5)
#   --gta_max_frame_diff N      frames a teacher-forced mel may be trimmed/padded to fit its audio;
#                               more stops with the utterance named (default: 2)
#   --gta_skip_mismatched BOOL  drop (and report) such utterances instead (default: false)
#   --gta_griffin_lim_iters N   Griffin-Lim iterations of the throw-away waveforms tts_inference
#                               writes in stage 3 (default: 1)
#   --finetune_config FILE      training sections (default: <repo>/conf/hifigan_finetune_gta.yaml)
#   --finetune_exp DIR          fine-tuning experiment (default: <voc_exp>_gta_<tts>)
#   --finetune_args STR         extra options of espnet_hifigan.bin.voc_train (default: "")

# shellcheck source-path=SCRIPTDIR
set -euo pipefail

stage_label="Chain stage"
# shellcheck source=scripts/common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/scripts/common.sh"
# shellcheck source=scripts/decode.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/scripts/decode.sh"

stage=1
stop_stage=10000
python=python3
ngpu=0
gpu_inference=false
inference_nj=4
tts_exp=""
tts_inference_model=train.loss.ave.pth
tts_decode_dirs=""
tts_recipe_dir=""
tts_data_dir=""
tts_inference_args=""
gta_extra_data=""
voc_exp=""
inference_model=""
pretrained_model=""
pretrained_discriminator=""
inference_args=""
gta_train_set=""
gta_valid_set=""
gta_max_frame_diff=2
gta_skip_mismatched=false
gta_griffin_lim_iters=1
finetune_config=""
finetune_exp=""
finetune_args=""

recipe_options "$@"

[ -n "${tts_exp}" ] || fail "--tts_exp is required"
# --pretrained_model: converted (generator and discriminators) into --voc_exp, the "experiment" chained.
if [ -n "${pretrained_model}" ]; then
    [ -e "${pretrained_model}" ] || fail "--pretrained_model ${pretrained_model} not found"
    voc_exp="${voc_exp:-exp/voc_pretrained_$(basename "${pretrained_model}" | tr -c 'A-Za-z0-9_.\n-' '_')}"
    [ ! -e "${voc_exp}" ] || [ -f "${voc_exp}/source" ] \
        || fail "--voc_exp ${voc_exp} exists and is no conversion of a --pretrained_model: give another --voc_exp"
    convert_pretrained "${pretrained_model}" "${pretrained_discriminator}" "${voc_exp}" \
        || fail "cannot warm-start from ${pretrained_model} (see above)"
    inference_model="${inference_model:-model.pth}"
fi
[ -n "${voc_exp}" ] || fail "--voc_exp (or --pretrained_model) is required"
[ -f "${tts_exp}/config.yaml" ] || fail "${tts_exp}/config.yaml not found (is --tts_exp an ESPnet TTS experiment?)"
[ -f "${voc_exp}/config.yaml" ] || fail "${voc_exp}/config.yaml not found (is --voc_exp a vocoder experiment?)"
check_uint ngpu inference_nj gta_max_frame_diff gta_griffin_lim_iters
check_stage_range 5
[ "${inference_nj}" -ge 1 ] || fail "--inference_nj must be >= 1"
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 3 ]; then
    [ -n "${gta_train_set}" ] && [ -n "${gta_valid_set}" ] || fail "--gta_train_set and --gta_valid_set are required for stages 3-4"
fi
finetune_config="${finetune_config:-${MAIN_ROOT}/conf/hifigan_finetune_gta.yaml}"

read -r -a tts_inference_args_arr <<<"${tts_inference_args}"
read -r -a gta_extra_data_arr <<<"${gta_extra_data}"
read -r -a inference_args_arr <<<"${inference_args}"
read -r -a finetune_args_arr <<<"${finetune_args}"
read -r -a tts_decode_dirs_arr <<<"${tts_decode_dirs}"

tts_recipe_dir="${tts_recipe_dir:-${tts_exp}/../..}"
[ -d "${tts_recipe_dir}" ] || fail "--tts_recipe_dir ${tts_recipe_dir} is not a directory"
tts_recipe_dir="$(readlink -f "${tts_recipe_dir}")"
tts_data_dir="${tts_data_dir:-${tts_recipe_dir}/dump/raw}"
tts_exp_abs="$(readlink -f "${tts_exp}")"
tts_tag="$(basename "${tts_exp_abs}")_$(printf '%s' "${tts_exp_abs}" | sha256sum | cut -c1-8)"
chain_dir="${voc_exp}/chain_${tts_tag}"
gta_dir="${chain_dir}/gta"
finetune_exp="${finetune_exp:-${voc_exp}_gta_${tts_tag}}"
# claim_for_tts <dir>: record the TTS experiment in <dir>/tts_exp; refuse a directory recorded for another.
claim_for_tts() {
    if [ -f "$1/tts_exp" ]; then
        [ "$(cat "$1/tts_exp")" = "${tts_exp_abs}" ] || fail "$1 holds the chaining after the TTS" \
            "$(cat "$1/tts_exp") (see $1/tts_exp), not ${tts_exp_abs}; give another --voc_exp/--finetune_exp or remove it"
    else
        mkdir -p "$1"
        echo "${tts_exp_abs}" >"$1/tts_exp"
    fi
}
for d in "${chain_dir}" "${finetune_exp}"; do
    if [ -f "${d}/tts_exp" ]; then claim_for_tts "${d}"; fi
done

# TTS output sets to decode (relative to tts_exp): given, or found.
if [ "${#tts_decode_dirs_arr[@]}" -eq 0 ]; then
    while IFS= read -r d; do
        case "${d}" in
            *teacher_forcing*) ;;
            *) tts_decode_dirs_arr+=("${d}") ;;
        esac
    done < <(find "${tts_exp}" -mindepth 4 -maxdepth 4 -name feats.scp -path '*/decode_*/*/*norm/feats.scp' \
        | sed -e "s|^${tts_exp}/||" -e 's|/[^/]*/feats.scp$||' | sort -u)
fi

# decode_tts_outputs <vocoder exp> <checkpoint name> <output root>: stages 2 and 5.
decode_tts_outputs() {
    local exp="$1" model="$2" root="$3" d out scp
    [ -f "${exp}/${model}" ] || fail "vocoder checkpoint ${exp}/${model} not found"
    [ "${#tts_decode_dirs_arr[@]}" -gt 0 ] || fail "no TTS outputs (<decode>/<set>/{norm,denorm}/feats.scp) under ${tts_exp}; run its decoding, or give --tts_decode_dirs"
    for d in "${tts_decode_dirs_arr[@]}"; do
        out="${root}/${d}"
        # The contract picks denorm/ or norm/ and stops on a mismatch, before anything is decoded;
        # it joins the decoding's outputs when those are complete.
        stage_dir_begin "${out}.contract"
        contract="${stage_tmp}/feats_contract.yaml"
        scp="$("${python_arr[@]}" -m espnet_hifigan.bin.tts_contract --tts_config "${tts_exp}/config.yaml" \
            --vocoder "${exp}/config.yaml" --decode_dir "${tts_exp}/${d}" --output_contract "${contract}")" \
            || fail "${tts_exp}/${d}: the TTS features do not fit the vocoder ${exp} (see above)"
        decode_feats_scp "${d}" "${scp}" "${out}" "${exp}/config.yaml" "${exp}/${model}" \
            --feats_contract "${contract}" "${inference_args_arr[@]}"
        mv "${contract}" "${out}/feats_contract.yaml"
    done
}

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    begin_stage 1 "Feature contract: ${tts_exp}/config.yaml vs ${voc_exp}/config.yaml"
    claim_for_tts "${chain_dir}"
    stage_dir_begin "${chain_dir}/contract"
    "${python_arr[@]}" -m espnet_hifigan.bin.tts_contract --tts_config "${tts_exp}/config.yaml" \
        --vocoder "${voc_exp}/config.yaml" --write_tts_contract "${stage_tmp}/tts_feature_contract.yaml" \
        || fail "the TTS ${tts_exp} and the vocoder ${voc_exp} use different features (table above)"
    mv "${stage_tmp}/tts_feature_contract.yaml" "${chain_dir}/tts_feature_contract.yaml"
    end_stage 1
fi

if [ -z "${inference_model}" ] && [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 2 ]; then
    inference_model="$("${python_arr[@]}" -m espnet_hifigan.bin.choose_checkpoint "${voc_exp}")" \
        || fail "cannot tell the checkpoint of ${voc_exp} (see above)"
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    begin_stage 2 "Decoding the TTS outputs of ${tts_exp} with ${voc_exp}/${inference_model}"
    claim_for_tts "${chain_dir}"
    decode_tts_outputs "${voc_exp}" "${inference_model}" "${chain_dir}/decode_${inference_model%.pth}"
    end_stage 2
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    begin_stage 3 "Teacher-forced mels of ${gta_train_set} and ${gta_valid_set} with ${tts_exp}/${tts_inference_model}"
    [ -f "${tts_exp}/${tts_inference_model}" ] || fail "TTS checkpoint ${tts_exp}/${tts_inference_model} not found (--tts_inference_model)"
    claim_for_tts "${chain_dir}"
    mkdir -p "${gta_dir}"
    # tts_inference always vocodes with Griffin-Lim when no vocoder is given; those waveforms are
    # thrown away, so make them cheap.
    echo "griffin_lim_iters: ${gta_griffin_lim_iters}" >"${gta_dir}/griffin_lim.yaml"
    for dset in "${gta_train_set}" "${gta_valid_set}"; do
        data="${tts_data_dir}/${dset}"
        for f in text wav.scp; do
            [ -f "${data}/${f}" ] || fail "${data}/${f} not found (--tts_data_dir: the TTS's data sets)"
        done
        out="${gta_dir}/tts_inference/${dset}"
        logdir="${out}/logdir"
        rm -rf "${out}"
        mkdir -p "${logdir}"
        # tts_inference runs in the TTS's recipe directory (its config's relative paths hold
        # there), so every path given to it is absolute.
        data="$(readlink -f "${data}")"
        logdir="$(readlink -f "${logdir}")"
        data_opts=(--data_path_and_name_and_type "${data}/text,text,text"
            --data_path_and_name_and_type "${data}/wav.scp,speech,sound")
        for entry in "${gta_extra_data_arr[@]}"; do
            data_opts+=(--data_path_and_name_and_type "${entry//\{set\}/${dset}}")
        done
        _nj="$(split_for_jobs "${data}/text" "${inference_nj}" "${logdir}/keys.JOB.scp")"
        select_job_cmd "$([ "${ngpu}" -gt 0 ] && echo true || echo false)"
        log "${dset}: $(nlines "${data}/text") utterances, ${_nj} jobs, logs in ${logdir}/tts_inference.*.log"
        # "&&" goes to the job's shell as an operator (Kaldi *.pl convention).
        "${job_cmd[@]}" JOB=1:"${_nj}" "${logdir}/tts_inference.JOB.log" \
            cd "${tts_recipe_dir}" "&&" \
            "${python_arr[@]}" -m espnet2.bin.tts_inference --ngpu "${job_ngpu}" \
            --train_config "$(readlink -f "${tts_exp}/config.yaml")" \
            --model_file "$(readlink -f "${tts_exp}/${tts_inference_model}")" \
            --use_teacher_forcing true --vocoder_config "$(readlink -f "${gta_dir}/griffin_lim.yaml")" \
            "${data_opts[@]}" --key_file "${logdir}/keys.JOB.scp" --output_dir "${logdir}/output.JOB" \
            "${tts_inference_args_arr[@]}" \
            || fail "teacher-forced inference of ${dset} failed; see ${logdir}/tts_inference.*.log"
        for sub in norm denorm; do
            if [ -f "${logdir}/output.1/${sub}/feats.scp" ]; then
                mkdir -p "${out}/${sub}"
                for n in $(seq "${_nj}"); do
                    cat "${logdir}/output.${n}/${sub}/feats.scp"
                done >"${out}/${sub}/feats.scp"
            fi
        done
        "${python_arr[@]}" -m espnet_hifigan.bin.gta align --tts_config "${tts_exp}/config.yaml" \
            --gta_dir "${out}" --wav_scp "${data}/wav.scp" --audio_root "${tts_recipe_dir}" \
            --vocoder "${voc_exp}/config.yaml" \
            --output_dir "${gta_dir}/${dset}" --max_frame_diff "${gta_max_frame_diff}" \
            --skip_mismatched "${gta_skip_mismatched}" \
            || fail "the teacher-forced mels of ${dset} cannot be paired with ${data}/wav.scp (see above)"
    done
    end_stage 3
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    begin_stage 4 "Fine-tuning ${voc_exp} on teacher-forced mels -> ${finetune_exp}"
    [ -f "${finetune_config}" ] || fail "fine-tuning config ${finetune_config} not found"
    init_model="${inference_model}"
    [ -f "${voc_exp}/${init_model}" ] || fail "pretrained checkpoint ${voc_exp}/${init_model} not found"
    train_dir="${gta_dir}/${gta_train_set}"
    valid_dir="${gta_dir}/${gta_valid_set}"
    for d in "${train_dir}" "${valid_dir}"; do
        [ -f "${d}/feats.scp" ] || fail "${d}/feats.scp not found; run stage 3 first"
    done
    claim_for_tts "${finetune_exp}"
    "${python_arr[@]}" -m espnet_hifigan.bin.gta finetune_config --pretrained_config "${voc_exp}/config.yaml" \
        --pretrained_model "${voc_exp}/${init_model}" --finetune_config "${finetune_config}" \
        --data_dirs "${train_dir}" "${valid_dir}" --output "${finetune_exp}/finetune.yaml" \
        || fail "cannot set up the fine-tuning (see above)"
    train_opts=(
        --config "${finetune_exp}/finetune.yaml"
        --train_data_path_and_name_and_type "${train_dir}/wav.scp,speech,sound"
        --train_data_path_and_name_and_type "${train_dir}/feats.scp,feats,kaldi_ark"
        --valid_data_path_and_name_and_type "${valid_dir}/wav.scp,speech,sound"
        --valid_data_path_and_name_and_type "${valid_dir}/feats.scp,feats,kaldi_ark"
        --train_shape_file "${train_dir}/speech_shape" --valid_shape_file "${valid_dir}/speech_shape"
        --resume true --output_dir "${finetune_exp}" "${finetune_args_arr[@]}"
    )
    if [ -f "${finetune_exp}/checkpoint.pth" ]; then
        log "Resuming from ${finetune_exp}/checkpoint.pth"
    fi
    log "Command: ${python} -m espnet_hifigan.bin.voc_train ${train_opts[*]} (+ --ngpu, --dist_* from scripts/launch_train.sh)"
    # As voc.sh stage 5: scripts/launch_train.sh picks the process layout and keeps earlier logs.
    scripts/launch_train.sh --cmd "${cuda_cmd}" --log "${finetune_exp}/train.log" --ngpu "${ngpu}" --num_nodes 1 \
        -- "${python_arr[@]}" -m espnet_hifigan.bin.voc_train "${train_opts[@]}" \
        || fail "fine-tuning failed; see ${finetune_exp}/train.log"
    end_stage 4
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    [ -f "${finetune_exp}/config.yaml" ] || fail "${finetune_exp}/config.yaml not found; run stage 4 first"
    finetune_model="$("${python_arr[@]}" -m espnet_hifigan.bin.choose_checkpoint "${finetune_exp}")" \
        || fail "cannot tell the checkpoint of ${finetune_exp} (see above)"
    begin_stage 5 "Decoding the TTS outputs of ${tts_exp} with ${finetune_exp}/${finetune_model}"
    decode_tts_outputs "${finetune_exp}" "${finetune_model}" "${finetune_exp}/chain_${tts_tag}/decode_${finetune_model%.pth}"
    end_stage 5
fi

log "Chain finished. [elapsed=${SECONDS}s]"

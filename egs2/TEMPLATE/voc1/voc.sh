#!/usr/bin/env bash
# voc.sh: Kaldi-style recipe for HiFi-GAN vocoders (espnet-hifigan), ESPnet egs2 conventions.
# Run it from a recipe directory (egs2/<corpus>/voc1) that provides path.sh, cmd.sh, utils/,
# conf/ and local/data.sh; a recipe's run.sh sets the corpus defaults and calls it.
#
# Usage: ./voc.sh [options]
#   "--opt value", "--opt=value" and "--opt-name value" are equivalent; --config FILE reads
#   opt=value lines from FILE first; --help prints this text.
#
# Stages (--stage N / --stop_stage N select a range):
#   1 data preparation  local/data.sh (or the sets of --data_from DIR)
#                       -> data/<set>/{wav.scp,utt2spk,spk2utt[,segments,text]},
#                       then validated (espnet_hifigan.bin.validate_data_dir)
#   2 audio formatting  mono, resampled to --fs, segments cut
#                       -> <dumpdir>/raw/<set>/{wav.scp,utt2num_samples,data/}
#   3 features          log-mel (espnet_hifigan.nets.features.LogMelSpectrogram)
#                       -> <dumpdir>/raw/<set>/{feats.scp,utt2num_frames,feats_conf.yaml}
#   4 statistics        feature mean/variance and shape files -> <expdir>/voc_stats/
#   5 training          -> <expdir>/<tag>/; running it again resumes from checkpoint.pth
#   6 decoding          feats.scp of --test_sets (or --decode_feats_scp)
#                       -> <expdir>/<tag>/decode_<model>/<set>/{wav/,wav.scp,timing.json}
#   7 scoring           -> <expdir>/<tag>/decode_<model>/<set>/scoring/, <expdir>/<tag>/RESULTS.md,
#                       listening pages <expdir>/<tag>/index.html, .../<set>/index.html
#   8 packing           -> <expdir>/<tag>/packed/model.zip, then one utterance decoded with it
#   9-13 chaining       with --tts_exp: chain.sh stages 1-5 (feature contract, decoding the TTS's
#                       outputs, teacher-forced mels, fine-tuning on them, decoding again);
#                       see ./chain.sh --help
#
# General options:
#   --stage N              first stage (default: 1)
#   --stop_stage N         last stage (default: 10000)
#   --nj N                 parallel jobs of stages 2-4 (default: 32; capped by utterances)
#   --inference_nj N       parallel jobs of stage 6 (default: 32; capped by utterances; decoding
#                          on the CPU with the local backend: also at the CPU count, scripts/num_cpus.sh;
#                          each job with CPUs / jobs torch threads)
#   --ngpu N               GPUs per node for training (default: 1; 0 = CPU; >1 = one process
#                          per GPU)
#   --num_nodes N          nodes for training (default: 1; >1 needs the slurm backend)
#   --gpu_inference BOOL   decode on a GPU (default: false)
#   --python CMD           Python interpreter (default: python3)
#   --dumpdir DIR          features and formatted audio (default: dump)
#   --expdir DIR           experiments (default: exp)
# Data:
#   --local_data_opts STR  options of local/data.sh (default: "")
#   --data_from DIR        take the sets from DIR (another recipe's data/, e.g. ../tts1/data) instead
#                          of running local/data.sh: copied into data/, relative paths (also in pipe
#                          commands) made absolute against DIR/.., validated; a --valid_set missing
#                          from DIR is drawn from the training set across its speakers. With
#                          --tts_exp: default the data/ of its recipe (python -m
#                          espnet_hifigan.bin.data_from) when the recipe has no local/data.sh of
#                          its own (default: "")
#   --unseen_speakers N    hold out N speakers of --train_set as the extra test set
#                          <train_set>_unseen, decoded and scored as its own RESULTS.md row (default: 0)
#   --train_set NAME       training set in data/ (required)
#   --valid_set NAME       validation set in data/ (required)
#   --test_sets "A B"      sets decoded and scored in stages 6-7 (default: "")
#   --audio_format FMT     flac or wav for the formatted audio (default: flac)
#   --multi_channel MODE   multi-channel input: error or first (keep channel 0) (default: error)
#   --peak_normalize P     scale each utterance to peak P, e.g. 0.95 as the official pretraining;
#                          not with TTS-matched features (--tts_exp) (default: "" = off)
# Features (one source of truth for stage 3, training and decoding):
#   --fs HZ                sampling rate (default: 22050)
#   --n_fft N              FFT size (default: 1024)
#   --n_shift N            frame shift = the generator's total upsampling (default: 256)
#   --win_length N         window length; empty or null = n_fft (default: "")
#   --n_mels N             mel bins (default: 80)
#   --fmin HZ, --fmax HZ   mel frequency range (default: 80, 7600)
#   The other fields of the feature contract (window, log base, floors, padding) come from
#   feats_extract_conf of --train_config; dump/raw/<set>/feats_conf.yaml records them all.
# Training:
#   --train_config FILE    training config (default: the --voc_version preset for --fs/--n_shift,
#                          python -m espnet_hifigan.bin.presets list; another shift needs a config)
#   --voc_version V        v1, v2 or v3: the preset's generator (default: v1)
#   --tag NAME             experiment name (default: voc_<basename of train_config>)
#   --voc_stats_dir DIR    statistics directory (default: <expdir>/voc_stats)
#   --train_args STR       extra options of espnet_hifigan.bin.voc_train (default: "")
#   --pretrained_model SRC warm start (generator AND discriminators) from a published HiFi-GAN: an
#                          official g_XXXXXXXX, a ParallelWaveGAN checkpoint-*.pkl or an ESPnet
#                          joint_text2wav model file, converted into <expdir>/<tag>/pretrained/
#                          (convert_checkpoint --for_training); its features set --fs ... --fmax
#                          (an explicit different one, or another --tts_exp's, stops with the
#                          table); training takes its model sections, the training sections of
#                          --train_config (default: its own) and --init_param its model.pth
#                          (default tag: voc_finetune_<basename of SRC>) (default: "")
#   --pretrained_discriminator F  the official do_XXXXXXXX of --pretrained_model (default: next to it)
# Decoding, scoring and packing:
#   --inference_model F    checkpoint in <expdir>/<tag>/ (default: "" = <phase>.<key>.best.pth of
#                          the first best_model_criterion of the experiment's config.yaml)
#   --inference_config F   YAML of voc_inference options (e.g. "dtype: bfloat16") (default: "")
#   --inference_args STR   extra options of espnet_hifigan.bin.voc_inference (default: "")
#   --inference_tag NAME   decode directory suffix (default: from the model and inference config)
#   --decode_feats_scp F   decode this feats.scp in stage 6 instead of --test_sets; it is scored in
#                          stage 7 if a wav.scp lies next to it (default: "")
#   --score_args STR       extra options of espnet_hifigan.bin.voc_score (default: "")
#   --pack_exports "A B"   stage 8 also exports the packed model (onnx, torchscript) into
#                          <expdir>/<tag>/packed/ (espnet_hifigan.bin.export) (default: "" = none)
# Chaining after an ESPnet acoustic model (egs2/*/tts1):
#   --tts_exp DIR          the TTS experiment: its config.yaml sets --fs, --n_fft, --n_shift,
#                          --win_length, --n_mels, --fmin, --fmax (the rest of its feature contract
#                          is checked against --train_config), and stages 9-13 run (default: "")
#   --chain_args STR       extra options of chain.sh, e.g. "--gta_train_set tr_no_dev
#                          --gta_valid_set dev --finetune_config conf/finetune.yaml" (default: "")

# shellcheck source-path=SCRIPTDIR
set -euo pipefail

# shellcheck source=scripts/common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/scripts/common.sh"
# shellcheck source=scripts/decode.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/scripts/decode.sh"
# shellcheck source=scripts/feats_jobs.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/scripts/feats_jobs.sh"
run_args="$(printf '%q ' "$0" "$@")"

# General
stage=1
stop_stage=10000
nj=32
inference_nj=32
ngpu=1
num_nodes=1
gpu_inference=false
python=python3
dumpdir=dump
expdir=exp
# Data
local_data_opts=""
data_from=""
unseen_speakers=0
train_set=""
valid_set=""
test_sets=""
audio_format=flac
multi_channel=error
peak_normalize=""
# Features
fs=22050
n_fft=1024
n_shift=256
win_length=""
n_mels=80
fmin=80
fmax=7600
# Training
train_config=""
voc_version=v1
tag=""
voc_stats_dir=""
train_args=""
pretrained_model=""
pretrained_discriminator=""
# Decoding, scoring, packing
inference_model=""
inference_config=""
inference_args=""
inference_tag=""
decode_feats_scp=""
score_args=""
pack_exports=""
# Chaining (stages 9-13)
tts_exp=""
chain_args=""

feat_names=(fs n_fft n_shift win_length n_mels fmin fmax)
declare -A feat_default
for name in "${feat_names[@]}"; do feat_default["${name}"]="${!name}"; done
recipe_options "$@"
# The feature options given on the command line or in a --config file (a --pretrained_model's
# features are checked against them).
given_feats=()
args_left=("$@")
while [ "${#args_left[@]}" -gt 0 ]; do
    arg="${args_left[0]}"
    args_left=("${args_left[@]:1}")
    name="${arg#--}"
    name="${name%%=*}"
    case "${name//-/_}" in
        fs | n_fft | n_shift | win_length | n_mels | fmin | fmax)
            if [[ "${arg}" == *=* ]]; then
                given_feats+=("${name//-/_}=${arg#*=}")
            elif [ "${#args_left[@]}" -gt 0 ]; then
                given_feats+=("${name//-/_}=${args_left[0]}")
            fi
            ;;
    esac
done
for name in "${feat_names[@]}"; do  # set by a --config file: changed from the default
    if [ "${!name}" != "${feat_default[${name}]}" ] && [[ " ${given_feats[*]} " != *" ${name}="* ]]; then
        given_feats+=("${name}=${!name}")
    fi
done

# --tts_exp: the data directory and sets of its recipe, where none are given (data_from.py tts_exp):
# its data/ when this recipe has no local/data.sh of its own (none, or setup.sh's stub).
own_data_sh=true
if [ ! -f local/data.sh ] || grep -q '^# voc1 setup.sh stub' local/data.sh; then own_data_sh=false; fi
if [ -n "${tts_exp}" ] && [ -f "${tts_exp}/config.yaml" ] \
    && { [ -z "${train_set}" ] || [ -z "${valid_set}" ] || { [ "${stage}" -le 1 ] && [ -z "${data_from}" ] && ! "${own_data_sh}"; }; }; then
    tts_sets="$("${python_arr[@]}" -m espnet_hifigan.bin.data_from tts_exp --tts_exp "${tts_exp}")" \
        || fail "the data sets of --tts_exp ${tts_exp} could not be read (see above)"
    while IFS='=' read -r key value; do
        case "${key}" in
            data_from)
                if [ -z "${data_from}" ] && ! "${own_data_sh}" && [ "$(readlink -f "${value}")" != "$(readlink -f data)" ]; then
                    data_from="${value}"
                    log "--data_from ${value} (the data of ${tts_exp})"
                fi
                ;;
            train_set | valid_set)
                if [ -z "${!key}" ]; then
                    printf -v "${key}" '%s' "${value}"
                    log "--${key} ${value} (from ${tts_exp}/config.yaml)"
                fi
                ;;
        esac
    done <<< "${tts_sets}"
fi

[ -n "${train_set}" ] || fail "--train_set is required"
[ -n "${valid_set}" ] || fail "--valid_set is required"
check_uint nj inference_nj ngpu num_nodes n_fft n_shift n_mels fs unseen_speakers
check_stage_range "$((${#tts_exp} > 0 ? 13 : 8))" "stages 9-13 run with --tts_exp"
[ -z "${tts_exp}" ] || [ -z "${peak_normalize}" ] || fail "--peak_normalize would change the level of the audio the TTS's mels match: leave it off with --tts_exp"
[ "${nj}" -ge 1 ] && [ "${inference_nj}" -ge 1 ] && [ "${num_nodes}" -ge 1 ] \
    || fail "--nj, --inference_nj and --num_nodes must be >= 1"
if [ -n "${train_config}" ] && [ ! -f "${train_config}" ]; then
    fail "training config not found: ${train_config}"
fi
if [ -n "${inference_config}" ] && [ ! -f "${inference_config}" ]; then
    fail "inference config not found: ${inference_config}"
fi

# Free-form options as arrays (word-split like ESPnet's unquoted use, no globbing).
read -r -a local_data_opts_arr <<<"${local_data_opts}"
read -r -a train_args_arr <<<"${train_args}"
read -r -a inference_args_arr <<<"${inference_args}"
read -r -a score_args_arr <<<"${score_args}"
read -r -a test_sets_arr <<<"${test_sets}"
if [ "${unseen_speakers}" -gt 0 ]; then  # the held-out speakers: decoded and scored as a set of their own
    test_sets_arr+=("${train_set}_unseen")
fi

# >>> warm start: --pretrained_model converted into <expdir>/<tag>/pretrained/, its features the recipe's
pretrained_dir=""
if [ -n "${pretrained_model}" ]; then
    [ -e "${pretrained_model}" ] || fail "--pretrained_model ${pretrained_model} not found"
    [ -z "${pretrained_discriminator}" ] || [ -f "${pretrained_discriminator}" ] \
        || fail "--pretrained_discriminator ${pretrained_discriminator} not found"
    if [ -z "${tag}" ]; then
        tag="voc_finetune_$(basename "${pretrained_model}" | tr -c 'A-Za-z0-9_.\n-' '_')"
    fi
    pretrained_dir="${expdir}/${tag}/pretrained"
    made_exp=false  # a refused source leaves no experiment directory behind
    [ -d "${expdir}/${tag}" ] || made_exp=true
    if ! convert_pretrained "${pretrained_model}" "${pretrained_discriminator}" "${pretrained_dir}"; then
        if "${made_exp}"; then rm -rf "${expdir:?}/${tag}"; fi
        fail "cannot warm-start from ${pretrained_model} (see above)"
    fi
    pretrained_opts=(--pretrained "${pretrained_dir}")
    for kv in "${given_feats[@]}"; do
        pretrained_opts+=(--given "${kv}")
    done
    [ -z "${tts_exp}" ] || pretrained_opts+=(--tts_config "${tts_exp}/config.yaml")
    if [ -n "${train_config}" ]; then  # its training sections, the pretrained model's sections
        pretrained_opts+=(--train_config "${train_config}" --write_config "${pretrained_dir}/train.yaml")
    fi
    if ! pretrained_feats="$("${python_arr[@]}" -m espnet_hifigan.bin.pretrained_opts "${pretrained_opts[@]}")"; then
        if "${made_exp}"; then rm -rf "${expdir:?}/${tag}"; fi
        fail "${pretrained_model} was trained on other features (table above)"
    fi
    while IFS='=' read -r key value; do
        printf -v "${key}" '%s' "${value}"
    done <<<"${pretrained_feats}"
    log "features of ${pretrained_model}: $(echo "${pretrained_feats}" | tr '\n' ' ')"
    if [ -n "${train_config}" ]; then
        log "--train_config ${pretrained_dir}/train.yaml (model sections of ${pretrained_model}, training sections of ${train_config})"
        train_config="${pretrained_dir}/train.yaml"
    else
        train_config="${pretrained_dir}/config.yaml"
        log "--train_config ${train_config} (converted from ${pretrained_model})"
    fi
fi
# <<< warm start
# >>> chaining: the features of --tts_exp (espnet_hifigan.bin.tts_contract)
if [ -n "${tts_exp}" ]; then
    [ -f "${tts_exp}/config.yaml" ] || fail "--tts_exp: ${tts_exp}/config.yaml not found"
    contract_opts=(--tts_config "${tts_exp}/config.yaml" --print_recipe_opts)
    if [ -n "${train_config}" ]; then
        contract_opts+=(--vocoder "${train_config}")
    fi
    tts_feats="$("${python_arr[@]}" -m espnet_hifigan.bin.tts_contract "${contract_opts[@]}")" \
        || fail "${tts_exp} uses features ${train_config} cannot make (table above)"
    while IFS='=' read -r key value; do
        if [ "${!key}" != "${value}" ] && [ -n "${!key}" ]; then
            log "--${key} ${!key} -> ${value} (from ${tts_exp}/config.yaml)"
        fi
        printf -v "${key}" '%s' "${value}"
    done <<<"${tts_feats}"
fi
# <<< chaining
if [ -z "${train_config}" ] && [ "${stop_stage}" -ge 3 ]; then  # the preset of --fs/--n_shift
    train_config="$("${python_arr[@]}" -m espnet_hifigan.bin.presets choose --fs "${fs}" --n_shift "${n_shift}" \
        --version "${voc_version}" --output_dir "${expdir}/conf")" || fail "no --train_config given and no preset fits (see above)"
    log "--train_config ${train_config} (the ${voc_version} preset for fs=${fs}, n_shift=${n_shift})"
fi

if [ -z "${tag}" ]; then
    tag="voc_$(basename "${train_config:-none}" .yaml)"
fi
voc_exp="${expdir}/${tag}"
voc_stats_dir="${voc_stats_dir:-${expdir}/voc_stats}"
win_length="${win_length:-null}"

# Every set once, in order: train, valid, tests.
all_sets=()
for dset in "${train_set}" "${valid_set}" "${test_sets_arr[@]}"; do
    case " ${all_sets[*]} " in
        *" ${dset} "*) ;;
        *) all_sets+=("${dset}") ;;
    esac
done

# Feature options: extract_feats (stage 3 and checks) and voc_train (stages 4-5).
feats_opts=(--fs "${fs}" --n_fft "${n_fft}" --hop_length "${n_shift}" --win_length "${win_length}"
    --n_mels "${n_mels}" --fmin "${fmin}" --fmax "${fmax}")
if [ -n "${train_config}" ]; then
    feats_opts+=(--train_config "${train_config}")
fi
train_feats_opts=()
for kv in "fs=${fs}" "n_fft=${n_fft}" "hop_length=${n_shift}" "win_length=${win_length}" \
    "n_mels=${n_mels}" "fmin=${fmin}" "fmax=${fmax}"; do
    train_feats_opts+=(--feats_extract_conf "${kv}")
done
[ -z "${train_config}" ] || [ "${stage}" -gt 5 ] || check_train_config "${train_config}" "${train_feats_opts[@]}"
# The layout and GPUs of stage 5 (e.g. --ngpu 1 on a host without CUDA), before stage 1 writes anything.
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    scripts/launch_train.sh --cmd "${cuda_cmd}" --ngpu "${ngpu}" --num_nodes "${num_nodes}" --check_only true \
        -- "${python_arr[@]}" -m espnet_hifigan.bin.voc_train || exit 1
fi

# check_feats_conf <dump set dir> ...: stop if their features were made with other settings.
check_feats_conf() {
    local confs=() d
    for d in "$@"; do confs+=("${d}/feats_conf.yaml"); done
    "${python_arr[@]}" -m espnet_hifigan.bin.extract_feats "${feats_opts[@]}" --check_conf "${confs[@]}" \
        || fail "the feature settings of $* differ from the current options (see above)"
}

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    if [ -n "${data_from}" ]; then
        begin_stage 1 "Data preparation: the sets of ${data_from}"
        [ -d "${data_from}" ] || fail "--data_from ${data_from}: no such directory"
        copy_sets=()
        for dset in "${all_sets[@]}"; do
            if [ "${dset}" = "${valid_set}" ] && [ ! -d "${data_from}/${dset}" ]; then continue; fi
            if [ "${unseen_speakers}" -gt 0 ] && [ "${dset}" = "${train_set}_unseen" ]; then continue; fi
            copy_sets+=("${dset}")
        done
        "${python_arr[@]}" -m espnet_hifigan.bin.data_from copy --data_from "${data_from}" --output_dir data \
            "${copy_sets[@]}" || fail "taking the sets from ${data_from} failed (see above)"
        if [ ! -d "${data_from}/${valid_set}" ]; then  # one utterance per speaker, 2-100
            n_valid="$(awk 'END { n = NR < 2 ? 2 : NR; print (n > 100 ? 100 : n) }' "data/${train_set}/spk2utt")"
            log "${data_from}/${valid_set} not found: ${n_valid} utterances of data/${train_set} drawn across its speakers"
            "${python_arr[@]}" -m espnet_hifigan.bin.data_from split --data_dir "data/${train_set}" \
                --out_dir "data/${valid_set}" --utts "${n_valid}" || fail "drawing data/${valid_set} failed (see above)"
        fi
    else
        begin_stage 1 "Data preparation: local/data.sh${local_data_opts:+ ${local_data_opts}}"
        local/data.sh "${local_data_opts_arr[@]}" || fail "local/data.sh failed"
    fi
    if [ "${unseen_speakers}" -gt 0 ]; then
        "${python_arr[@]}" -m espnet_hifigan.bin.data_from split --data_dir "data/${train_set}" \
            --out_dir "data/${train_set}_unseen" --speakers "${unseen_speakers}" \
            || fail "holding out ${unseen_speakers} speakers of data/${train_set} failed (see above)"
    fi
    for dset in "${all_sets[@]}"; do
        "${python_arr[@]}" -m espnet_hifigan.bin.validate_data_dir "data/${dset}" \
            || fail "data/${dset} is not a valid data directory (see above)"
    done
    end_stage 1
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    begin_stage 2 "Audio formatting: mono, ${fs} Hz, ${audio_format} -> ${dumpdir}/raw"
    for dset in "${all_sets[@]}"; do
        data="data/${dset}"
        dump="${dumpdir}/raw/${dset}"
        logdir="${dump}/logdir/format_wav"
        "${python_arr[@]}" -m espnet_hifigan.bin.validate_data_dir "${data}" \
            || fail "${data} is not a valid data directory (see above)"
        stage_dir_begin "${dump}"
        rm -rf "${logdir}"
        mkdir -p "${logdir}"
        if [ -f "${data}/segments" ]; then
            keys="${data}/segments"
        else
            keys="${data}/wav.scp"
        fi
        _nj="$(split_for_jobs "${keys}" "${nj}" "${logdir}/keys.JOB")"
        seg_opts=(--wav_scp "${data}/wav.scp")
        if [ -f "${data}/segments" ]; then
            seg_opts+=(--segments "${logdir}/keys.JOB")
        else
            seg_opts=(--wav_scp "${logdir}/keys.JOB")
        fi
        log "${dset}: $(nlines "${keys}") utterances, ${_nj} jobs, logs in ${logdir}/format_wav.*.log"
        if ! "${train_cmd_arr[@]}" JOB=1:"${_nj}" "${logdir}/format_wav.JOB.log" \
            "${python_arr[@]}" -m espnet_hifigan.bin.format_wav "${seg_opts[@]}" \
            --fs "${fs}" --audio_format "${audio_format}" --multi_channel "${multi_channel}" --peak_normalize "${peak_normalize}" \
            --out_dir "${stage_tmp}/data/format.JOB" --out_scp "${logdir}/wav.JOB.scp" \
            --out_utt2num_samples "${logdir}/utt2num_samples.JOB"; then
            fail "audio formatting of ${dset} failed; see ${logdir}/format_wav.*.log"
        fi
        for n in $(seq "${_nj}"); do cat "${logdir}/wav.${n}.scp"; done | sort >"${stage_tmp}/wav.scp"
        for n in $(seq "${_nj}"); do cat "${logdir}/utt2num_samples.${n}"; done | sort >"${stage_tmp}/utt2num_samples"
        for f in utt2spk spk2utt text; do
            if [ -f "${data}/${f}" ]; then cp "${data}/${f}" "${stage_tmp}/${f}"; fi
        done
        echo raw >"${stage_tmp}/feats_type"
        echo "${audio_format}" >"${stage_tmp}/audio_format"
        stage_dir_commit "${stage_tmp}" "${dump}" logdir/format_wav wav.scp
        total_sec="$(awk -v fs="${fs}" '{ n += $2 } END { printf("%.1f", n / fs) }' "${dump}/utt2num_samples")"
        log "${dset}: ${dump}/wav.scp ($(nlines "${dump}/wav.scp") utterances, ${total_sec} s)"
    done
    end_stage 2
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    begin_stage 3 "Feature extraction: fs=${fs} n_fft=${n_fft} n_shift=${n_shift} win_length=${win_length} n_mels=${n_mels} fmin=${fmin} fmax=${fmax}"
    for dset in "${all_sets[@]}"; do
        dump="${dumpdir}/raw/${dset}"
        logdir="${dump}/logdir/extract_feats"
        [ -f "${dump}/wav.scp" ] || fail "${dump}/wav.scp not found; run stage 2 first"
        stage_dir_begin "${dump}/feats"
        rm -rf "${logdir}"
        mkdir -p "${logdir}"
        _nj="$(split_for_jobs "${dump}/wav.scp" "${nj}" "${logdir}/wav.JOB.scp")"
        log "${dset}: ${_nj} jobs, logs in ${logdir}/extract_feats.*.log"
        if ! "${train_cmd_arr[@]}" JOB=1:"${_nj}" "${logdir}/extract_feats.JOB.log" \
            "${python_arr[@]}" -m espnet_hifigan.bin.extract_feats "${feats_opts[@]}" \
            --wav_scp "${logdir}/wav.JOB.scp" --utt2num_samples "${dump}/utt2num_samples" \
            --out_ark "${stage_tmp}/feats.JOB.ark" --out_scp "${logdir}/feats.JOB.scp" \
            --out_utt2num_frames "${logdir}/utt2num_frames.JOB" --write_conf "${logdir}/feats_conf.JOB.yaml"; then
            fail "feature extraction of ${dset} failed; see ${logdir}/extract_feats.*.log"
        fi
        merge_feats_jobs "${dset}" "${dump}" "${logdir}" "${_nj}" "${stage_tmp}"
        log "${dset}: ${dump}/feats.scp ($(nlines "${dump}/feats.scp") utterances): $(feats_speed "${logdir}")"
    done
    end_stage 3
fi

# ---------------------------------------------------------------------------------------------
train_dir="${dumpdir}/raw/${train_set}"
valid_dir="${dumpdir}/raw/${valid_set}"
data_opts=(
    --train_data_path_and_name_and_type "${train_dir}/wav.scp,speech,sound"
    --train_data_path_and_name_and_type "${train_dir}/feats.scp,feats,kaldi_ark"
    --valid_data_path_and_name_and_type "${valid_dir}/wav.scp,speech,sound"
    --valid_data_path_and_name_and_type "${valid_dir}/feats.scp,feats,kaldi_ark"
)

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    # Statistics are of the raw features: normalisation is off while collecting (--normalize none).
    begin_stage 4 "Statistics -> ${voc_stats_dir}"
    for d in "${train_dir}" "${valid_dir}"; do
        [ -f "${d}/feats.scp" ] || fail "${d}/feats.scp not found; run stage 3 first"
    done
    check_feats_conf "${train_dir}" "${valid_dir}"
    logdir="${voc_stats_dir}/logdir"
    stage_dir_begin "${voc_stats_dir}"
    rm -rf "${logdir}"
    mkdir -p "${logdir}"
    _nj="$(split_for_jobs "${valid_dir}/wav.scp" "${nj}" "${logdir}/valid.JOB.scp")"
    _nj="$(split_for_jobs "${train_dir}/wav.scp" "${_nj}" "${logdir}/train.JOB.scp")"
    log "${_nj} jobs, logs in ${logdir}/stats.*.log"
    "${train_cmd_arr[@]}" JOB=1:"${_nj}" "${logdir}/stats.JOB.log" \
        "${python_arr[@]}" -m espnet_hifigan.bin.voc_train --collect_stats true \
        --config "${train_config}" "${data_opts[@]}" "${train_feats_opts[@]}" --normalize none \
        --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/valid.JOB.scp" \
        --output_dir "${logdir}/stats.JOB" "${train_args_arr[@]}" \
        || fail "statistics collection failed; see ${logdir}/stats.*.log"
    input_dirs=()
    for n in $(seq "${_nj}"); do
        input_dirs+=(--input_dir "${logdir}/stats.${n}")
    done
    "${python_arr[@]}" -m espnet2.bin.aggregate_stats_dirs "${input_dirs[@]}" --output_dir "${stage_tmp}" \
        >"${logdir}/aggregate.log" 2>&1 || fail "aggregating statistics failed; see ${logdir}/aggregate.log"
    for f in train/feats_stats.npz train/speech_shape valid/speech_shape; do
        [ -f "${stage_tmp}/${f}" ] || fail "${voc_stats_dir}/${f} was not written; see ${logdir}/stats.*.log"
    done
    # The features the statistics belong to (checked by stage 5).
    cp "${train_dir}/feats_conf.yaml" "${stage_tmp}/feats_conf.yaml"
    stage_dir_commit "${stage_tmp}" "${voc_stats_dir}" logdir
    log "${voc_stats_dir}/train/feats_stats.npz, {train,valid}/speech_shape"
    end_stage 4
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    begin_stage 5 "Training -> ${voc_exp}"
    for d in "${train_dir}" "${valid_dir}"; do
        [ -f "${d}/feats.scp" ] || fail "${d}/feats.scp not found; run stage 3 first"
    done
    check_feats_conf "${train_dir}" "${valid_dir}"
    [ -f "${voc_stats_dir}/train/feats_stats.npz" ] || fail "${voc_stats_dir}/train/feats_stats.npz not found; run stage 4 first"
    cmp -s "${voc_stats_dir}/feats_conf.yaml" "${train_dir}/feats_conf.yaml" \
        || fail "${voc_stats_dir} holds statistics of other features than ${train_dir}; run stage 4 again"
    if [ -f "${voc_exp}/checkpoint.pth" ]; then
        log "Resuming from ${voc_exp}/checkpoint.pth"
    fi
    start_opts=(--normalize_conf "stats_file=${voc_stats_dir}/train/feats_stats.npz")
    if [ -n "${pretrained_dir}" ]; then  # the pretrained weights and their own statistics (config.yaml's)
        start_opts=(--init_param "${pretrained_dir}/model.pth")
    fi
    train_opts=(
        --config "${train_config}" "${data_opts[@]}" "${train_feats_opts[@]}"
        --train_shape_file "${voc_stats_dir}/train/speech_shape"
        --valid_shape_file "${voc_stats_dir}/valid/speech_shape"
        "${start_opts[@]}"
        --resume true --output_dir "${voc_exp}" "${train_args_arr[@]}"
    )
    # Every check that would refuse this run (its data; a resume the experiment's checkpoint
    # cannot continue: another config into an existing --tag), before run.sh, train.log or
    # config.yaml change: a refused run leaves ${voc_exp} as it was.
    "${python_arr[@]}" -m espnet_hifigan.bin.check_config "${train_opts[@]}" \
        || fail "training refused (see above); nothing in ${voc_exp} was changed"
    mkdir -p "${voc_exp}"
    log "Settings: config=${train_config} fs=${fs} n_fft=${n_fft} n_shift=${n_shift}" \
        "win_length=${win_length} n_mels=${n_mels} fmin=${fmin} fmax=${fmax} ngpu=${ngpu}" \
        "num_nodes=${num_nodes} train_args='${train_args}'"
    log "Command: ${python} -m espnet_hifigan.bin.voc_train ${train_opts[*]} (+ --ngpu, --dist_* from scripts/launch_train.sh)"
    log "Log: ${voc_exp}/train.log (effective configuration: ${voc_exp}/config.yaml)"
    echo "${run_args} --stage 5 \"\$@\"; exit \$?" >"${voc_exp}/run.sh"
    chmod +x "${voc_exp}/run.sh"
    # scripts/launch_train.sh picks the process layout (one process; DDP over the GPUs of one
    # node; srun over nodes with the slurm backend) and adds --ngpu and the --dist_* options.
    scripts/launch_train.sh --cmd "${cuda_cmd}" --log "${voc_exp}/train.log" \
        --ngpu "${ngpu}" --num_nodes "${num_nodes}" \
        -- "${python_arr[@]}" -m espnet_hifigan.bin.voc_train "${train_opts[@]}" \
        || fail "training failed; see ${voc_exp}/train.log"
    grep -h "The training was resumed using" "${voc_exp}/train.log" || true
    end_stage 5
fi

# ---------------------------------------------------------------------------------------------
# Decode sets: name and feats.scp.
decode_names=()
decode_scps=()
if [ -n "${decode_feats_scp}" ]; then
    decode_names+=("$(basename "$(dirname "${decode_feats_scp}")")")
    decode_scps+=("${decode_feats_scp}")
else
    for dset in "${test_sets_arr[@]}"; do
        decode_names+=("${dset}")
        decode_scps+=("${dumpdir}/raw/${dset}/feats.scp")
    done
fi

if [ "${stop_stage}" -ge 6 ] && [ "${stage}" -le 8 ]; then
    # The checkpoint to decode with: --inference_model, else the config's first best criterion.
    if [ -z "${inference_model}" ]; then
        [ -f "${voc_exp}/config.yaml" ] || fail "${voc_exp}/config.yaml not found; run stage 5 first"
        inference_model="$("${python_arr[@]}" -m espnet_hifigan.bin.choose_checkpoint "${voc_exp}")" \
            || fail "cannot tell the checkpoint of ${voc_exp} (see above)"
    fi
    if [ -z "${inference_tag}" ]; then
        if [ -n "${inference_config}" ]; then
            inference_tag="$(basename "${inference_config}" .yaml)_${inference_model%.pth}"
        else
            inference_tag="${inference_model%.pth}"
        fi
    fi
    decode_dir="${voc_exp}/decode_${inference_tag}"
    # voc_inference options from --inference_config (YAML of option: value).
    inference_config_opts=()
    if [ -n "${inference_config}" ]; then
        mapfile -t inference_config_opts < <(inference_config_args "${inference_config}")
    fi
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    begin_stage 6 "Decoding with ${voc_exp}/${inference_model} -> ${decode_dir}"
    [ -f "${voc_exp}/${inference_model}" ] || fail "model ${voc_exp}/${inference_model} not found;" \
        "available: $(find "${voc_exp}" -maxdepth 1 -name '*.pth' -printf '%f ' 2>/dev/null)"
    [ "${#decode_names[@]}" -gt 0 ] || fail "nothing to decode: give --test_sets or --decode_feats_scp"
    conf_dirs=()
    for scp in "${decode_scps[@]}"; do
        [ -f "${scp}" ] || fail "${scp} not found; run stage 3 first"
        if [ -f "$(dirname "${scp}")/feats_conf.yaml" ]; then
            conf_dirs+=("$(dirname "${scp}")")
        else
            log "no feats_conf.yaml next to ${scp}: declare it with --inference_args '--feats_contract F' or '--assume_raw_features true'"
        fi
    done
    if [ "${#conf_dirs[@]}" -gt 0 ]; then
        check_feats_conf "${conf_dirs[@]}"
    fi
    for i in "${!decode_names[@]}"; do
        name="${decode_names[${i}]}"
        scp="${decode_scps[${i}]}"
        decode_feats_scp "${name}" "${scp}" "${decode_dir}/${name}" "${voc_exp}/config.yaml" \
            "${voc_exp}/${inference_model}" "${inference_config_opts[@]}" "${inference_args_arr[@]}"
    done
    end_stage 6
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    begin_stage 7 "Scoring ${decode_dir} -> ${voc_exp}/RESULTS.md"
    "${python_arr[@]}" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("espnet_hifigan.bin.voc_score") is None)' \
        || fail "stage 7 needs the scoring CLI espnet_hifigan.bin.voc_score, which is not installed" \
            "(run up to --stop_stage 6, or skip it with --stage 8)"
    for i in "${!decode_names[@]}"; do
        name="${decode_names[${i}]}"
        out="${decode_dir}/${name}"
        ref="$(dirname "${decode_scps[${i}]}")/wav.scp"
        [ -f "${out}/wav.scp" ] || fail "${out}/wav.scp not found; run stage 6 first"
        if [ ! -f "${ref}" ]; then
            log "WARNING: ${name}: no reference ${ref}; not scored"
            continue
        fi
        read -r rtf device < <("${python_arr[@]}" -c '
import json, sys
t = json.load(open(sys.argv[1], encoding="utf-8"))
print(t["rtf"], t["device"])' "${out}/timing.json")
        mel_conf_opts=()
        if [ -f "$(dirname "${decode_scps[${i}]}")/feats_conf.yaml" ]; then
            mel_conf_opts=(--mel_conf "$(dirname "${decode_scps[${i}]}")/feats_conf.yaml")
        fi
        stage_dir_begin "${out}/scoring"
        "${decode_cmd_arr[@]}" "${out}/logdir/score.log" \
            "${python_arr[@]}" -m espnet_hifigan.bin.voc_score --ref_scp "${ref}" --gen_scp "${out}/wav.scp" \
            --output_dir "${stage_tmp}" --results_md "${voc_exp}/RESULTS.md" \
            --checkpoint "${inference_model}" --set "${name}" --rtf "${rtf}" --device "${device}" \
            "${mel_conf_opts[@]}" "${score_args_arr[@]}" \
            || fail "scoring ${name} failed; see ${out}/logdir/score.log"
        stage_dir_commit "${stage_tmp}" "${out}/scoring" ""
        log "${name}: scores in ${out}/scoring/"
        "${python_arr[@]}" -m espnet_hifigan.bin.listening_page --decode_dir "${out}" --ref_scp "${ref}" \
            --exp_dir "${voc_exp}" || fail "writing the listening page ${out}/index.html failed (see above)"
    done
    if [ -f "${voc_exp}/RESULTS.md" ]; then
        log "Results: ${voc_exp}/RESULTS.md; listening pages: ${voc_exp}/index.html"
    fi
    end_stage 7
fi

# ---------------------------------------------------------------------------------------------
if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    packed="${voc_exp}/packed/model.zip"
    begin_stage 8 "Packing ${voc_exp}/${inference_model} -> ${packed}"
    [ -f "${voc_exp}/${inference_model}" ] || fail "model ${voc_exp}/${inference_model} not found; run stage 5 first"
    # The logs go into packed/ at once, the rest is built in ${stage_tmp} and swapped in when complete.
    stage_dir_begin "${voc_exp}/packed"
    mkdir -p "${voc_exp}/packed/check" "${stage_tmp}/check/input"
    "${train_cmd_arr[@]}" "${voc_exp}/packed/pack.log" \
        "${python_arr[@]}" -m espnet_hifigan.bin.pack --train_config "${voc_exp}/config.yaml" \
        --model_file "${voc_exp}/${inference_model}" --outpath "${stage_tmp}/model.zip" \
        || fail "packing failed; see ${voc_exp}/packed/pack.log"
    [ -f "${stage_tmp}/model.zip" ] || fail "${packed} was not written; see ${voc_exp}/packed/pack.log"
    # Prove that the archive alone decodes: one utterance, no --train_config.
    check_scp=""
    for dset in "${test_sets_arr[@]}" "${valid_set}" "${train_set}"; do
        if [ -s "${dumpdir}/raw/${dset}/feats.scp" ]; then
            check_scp="${dumpdir}/raw/${dset}/feats.scp"
            break
        fi
    done
    [ -n "${check_scp}" ] || fail "no feats.scp to check the packed model with; run stage 3 first"
    # The input list lies apart from the output (voc_inference refuses to write into its list's directory).
    head -n 1 "${check_scp}" >"${stage_tmp}/check/input/feats.scp"
    "${decode_cmd_arr[@]}" "${voc_exp}/packed/check/inference.log" \
        "${python_arr[@]}" -m espnet_hifigan.bin.voc_inference --ngpu 0 --model_file "${stage_tmp}/model.zip" \
        --feats_scp "${stage_tmp}/check/input/feats.scp" --origin_scp "${check_scp}" --output_dir "${stage_tmp}/check" \
        || fail "decoding with the packed model failed; see ${voc_exp}/packed/check/inference.log"
    [ "$(nlines "${stage_tmp}/check/wav.scp" 2>/dev/null || echo 0)" -eq 1 ] \
        || fail "the packed model decoded nothing; see ${voc_exp}/packed/check/inference.log"
    if [ -n "${pack_exports}" ]; then
        "${train_cmd_arr[@]}" "${voc_exp}/packed/export.log" "${python_arr[@]}" -m espnet_hifigan.bin.export \
            --model "${stage_tmp}/model.zip" --outdir "${stage_tmp}" --formats "${pack_exports}" \
            || fail "exporting ${packed} (${pack_exports}) failed; see ${voc_exp}/packed/export.log"
    fi
    stage_dir_commit "${stage_tmp}" "${voc_exp}/packed" "pack.log export.log check/inference.log" \
        check/wav.scp export.yaml feature_contract.yaml
    check_dir="${voc_exp}/packed/check"
    log "${packed}: $(du -h "${packed}" | cut -f1), decodes $(awk '{ print $1 }' "${check_dir}/wav.scp") -> ${check_dir}/wav/"
    end_stage 8
fi

# >>> chaining: stages 9-13 are chain.sh's stages 1-5
if [ -n "${tts_exp}" ] && [ "${stop_stage}" -ge 9 ]; then
    chain_sh="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/chain.sh"
    read -r -a chain_args_arr <<<"${chain_args}"
    chain_opts=(--python "${python}" --ngpu "${ngpu}" --gpu_inference "${gpu_inference}"
        --inference_nj "${inference_nj}" --tts_exp "${tts_exp}" --voc_exp "${voc_exp}"
        --stage "$((stage > 9 ? stage - 8 : 1))" --stop_stage "$((stop_stage - 8))")
    if [ -n "${inference_model}" ]; then
        chain_opts+=(--inference_model "${inference_model}")
    fi
    begin_stage 9 "Chaining after ${tts_exp}: ${chain_sh} ${chain_opts[*]} ${chain_args}"
    "${chain_sh}" "${chain_opts[@]}" "${chain_args_arr[@]}" || fail "chaining after ${tts_exp} failed (see above)"
    end_stage 9
fi
# <<< chaining

log "Successfully finished. [elapsed=${SECONDS}s]"

#!/usr/bin/env bash
# parse_options.sh: Kaldi-compatible command-line option parser. Source it, don't run it:
#
#   stage=1            # every option needs a default value before parsing
#   use_gpu=false
#   . utils/parse_options.sh
#
# Semantics (those of Kaldi's utils/parse_options.sh):
#   --foo-bar VALUE, --foo_bar VALUE, --foo_bar=VALUE   set the variable foo_bar, which must
#                                                      already be defined by the caller.
#   --config FILE     source FILE (lines of var=value) before the other options, so that
#                     command-line options win over it wherever --config appears.
#   --help, -h        print ${help_message} if the caller set it, else the caller's header
#                     comment (the '#' lines after the shebang), and exit 0.
#   Options whose default is true or false accept only true or false.
#   Parsing stops at the first argument that is not an option, or after "--"; the remaining
#   (positional) arguments stay in "$@" of the caller.
# Errors (unknown option, missing value, bad boolean, missing config file) print one line to
# stderr naming the option and exit 1.
# Kaldi's own (linked by setup.sh when KALDI_ROOT/ESPnet provide it) refuses "--name=value" and
# "--", prints only ${help_message} (scripts/common.sh's recipe_options sets it from the header)
# and evaluates values (eval name="value": keep '"', '$' and '`' out of them); the recipe's
# scripts call each other with "--name value" only, so that both parsers give the same result.

__po_die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

__po_print_help() {
    if [ -n "${help_message:-}" ]; then
        printf '%s\n' "${help_message}"
    else
        awk 'NR == 1 && /^#!/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
    fi
}

# Pass 1: --help and --config FILE (sourced first, as Kaldi does).
__po_args=("$@")
__po_i=0
while [ "${__po_i}" -lt "${#__po_args[@]}" ]; do
    __po_arg="${__po_args[${__po_i}]}"
    case "${__po_arg}" in
        --help | -h)
            __po_print_help
            exit 0
            ;;
        --config=*)
            __po_cfg="${__po_arg#--config=}"
            ;;
        --config)
            __po_i=$((__po_i + 1))
            [ "${__po_i}" -lt "${#__po_args[@]}" ] || __po_die "option --config needs a value"
            __po_cfg="${__po_args[${__po_i}]}"
            ;;
        --)
            break
            ;;
        --*=*)
            __po_i=$((__po_i + 1))
            continue
            ;;
        --*)
            __po_i=$((__po_i + 2))
            continue
            ;;
        *)
            break
            ;;
    esac
    if [ -n "${__po_cfg:-}" ]; then
        [ -f "${__po_cfg}" ] || __po_die "config file '${__po_cfg}' (from --config) does not exist"
        # shellcheck disable=SC1090
        . "${__po_cfg}"
        __po_cfg=""
    fi
    __po_i=$((__po_i + 1))
done

# Pass 2: every other --name value / --name=value.
while [ $# -gt 0 ]; do
    case "$1" in
        --)
            shift
            break
            ;;
        --*=*)
            __po_name="${1%%=*}"
            __po_value="${1#*=}"
            shift
            ;;
        --*)
            [ $# -ge 2 ] || __po_die "option $1 needs a value"
            __po_name="$1"
            __po_value="$2"
            shift 2
            ;;
        *)
            break
            ;;
    esac
    __po_opt="${__po_name}"
    __po_name="${__po_name#--}"
    __po_name="${__po_name//-/_}"
    if [ "${__po_name}" = config ]; then
        continue
    fi
    if ! [[ "${__po_name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        __po_die "invalid option ${__po_opt}"
    fi
    case "${__po_name}" in
        __po_* | BASH* | PATH | IFS | HOME | PWD | OLDPWD | SHELL | LD_LIBRARY_PATH | PYTHONPATH)
            __po_die "invalid option ${__po_opt}"
            ;;
    esac
    if [ -z "${!__po_name+set}" ]; then
        __po_die "invalid option ${__po_opt} (see --help)"
    fi
    __po_old="${!__po_name}"
    if [ "${__po_old}" = true ] || [ "${__po_old}" = false ]; then
        if [ "${__po_value}" != true ] && [ "${__po_value}" != false ]; then
            __po_die "option ${__po_opt} expects true or false, got '${__po_value}'"
        fi
    fi
    printf -v "${__po_name}" '%s' "${__po_value}"
done

unset __po_args __po_i __po_arg __po_cfg __po_name __po_value __po_opt __po_old
unset -f __po_die __po_print_help
true

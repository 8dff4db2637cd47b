#!/usr/bin/env python3
"""Check a training config before any recipe stage writes: unknown keys, a model that builds.

``voc_train --print_config`` accepts any key inside ``feats_extract_conf``, ``generator_conf``,
``discriminator_conf``, ``normalize_conf``, ``model_conf``, ``optim*_conf`` and
``scheduler*_conf``; a misspelt one would fail only when training builds the model (stage 4 or
5, after earlier results were removed). This CLI parses the config as ``voc_train`` does (with
the same overrides), checks every key of those sections against the class it configures, then
builds the model and its optimizers on the CPU. Exit status 1 with one message naming the
config file, the section and the key. Given a whole training command (``--output_dir``), it
also makes the checks that would refuse that run (``VocoderTask.check_before_writing``: the
training data's contract, a ``--resume`` the experiment's checkpoint cannot continue), writing
nothing: voc.sh stage 5 runs it before it touches the experiment.

Example:
    python -m espnet_hifigan.bin.check_config --config conf/hifigan_v1.yaml \\
        --feats_extract_conf fs=22050 --feats_extract_conf hop_length=256
"""

from __future__ import annotations

import argparse
import inspect
import logging
import re
import sys
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Tuple

# Sections checked key by key: (section, name of the option choosing its class or None).
SECTIONS = (
    ("feats_extract_conf", "feats_extract"),
    ("normalize_conf", "normalize"),
    ("generator_conf", "generator"),
    ("discriminator_conf", "discriminator"),
    ("model_conf", None),
    ("optim_conf", "optim"),
    ("optim2_conf", "optim2"),
    ("scheduler_conf", "scheduler"),
    ("scheduler2_conf", "scheduler2"),
)


# Options that must be integers >= 1 when set (None: not set): 0 or less fails only in training
# (stage 5, in train.log: a bare AssertionError of ESPnet's batch sampler) or trains nothing.
POSITIVE_OPTIONS = (
    "batch_size",
    "batch_bins",
    "valid_batch_size",
    "valid_batch_bins",
    "num_iters_per_epoch",
    "max_epoch",
    "accum_grad",
    "log_interval",
)
# Options that must be integers >= 0 when set.
NON_NEGATIVE_OPTIONS = ("num_workers",)


class ConfigError(ValueError):
    """A training config that names unknown keys or does not build a model."""


def check_numbers(args: argparse.Namespace, source: str, argv: Sequence[str] = ()) -> None:
    """Raise :class:`ConfigError` for the first option of :data:`POSITIVE_OPTIONS` or
    :data:`NON_NEGATIVE_OPTIONS` that is not an integer in its range.

    Args:
        args: The parsed options (the config's values are not type-checked by ESPnet's parser).
        source: The config file, named in the message.
        argv: The command line (an option given there is named as such).
    """
    for key in POSITIVE_OPTIONS + NON_NEGATIVE_OPTIONS:
        value = getattr(args, key, None)
        least = 1 if key in POSITIVE_OPTIONS else 0
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= least):
            continue
        given = any(a == f"--{key}" or a.startswith(f"--{key}=") for a in argv)
        where = f"--{key} on the command line" if given else f"{source}: {key}"
        raise ConfigError(
            f"{where} must be an integer >= {least}, got {value!r}; fix it (nothing was trained or written)"
        )


def accepted_keys(cls: Callable) -> Optional[Tuple[str, ...]]:
    """Keyword arguments of a class's constructor; None when it takes ``**kwargs``."""
    params = inspect.signature(cls).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def section_classes(args: argparse.Namespace) -> Iterator[Tuple[str, Callable]]:
    """``(section, class)`` for every section of :data:`SECTIONS` that is in use."""
    from espnet2.tasks.abs_task import optim_classes, scheduler_classes

    from espnet_hifigan.train.espnet_model import ESPnetHiFiGANModel
    from espnet_hifigan.train.task import VocoderTask

    choices = {c.name: c for c in VocoderTask.class_choices_list}
    for section, chooser in SECTIONS:
        if chooser is None:
            yield section, ESPnetHiFiGANModel
            continue
        name = getattr(args, chooser, None)
        if name is None or name == "none":
            continue
        if chooser in choices:
            yield section, choices[chooser].get_class(name)
        elif chooser.startswith("optim"):
            yield section, optim_classes[name]
        else:
            yield section, scheduler_classes[name]


def check_keys(args: argparse.Namespace, source: str) -> None:
    """Raise :class:`ConfigError` for the first key no constructor takes."""
    for section, cls in section_classes(args):
        conf: Mapping[str, Any] = getattr(args, section, None) or {}
        known = accepted_keys(cls)
        if known is None:
            continue
        skip = {"in_channels"} if section == "generator_conf" else set()
        skip |= {"feats_extract", "normalize", "generator", "discriminator"} if section == "model_conf" else set()
        skip |= {"params"} if section.startswith("optim") else set()
        skip |= {"optimizer"} if section.startswith("scheduler") else set()
        for key in conf:
            if key not in known or key in skip:
                allowed = ", ".join(k for k in known if k not in skip and k != "self")
                raise ConfigError(
                    f"{source}: unknown key {key!r} in {section} ({cls.__name__} takes: {allowed}); "
                    "fix or remove it"
                )


def find_key(args: argparse.Namespace, key: str) -> Optional[str]:
    """Where ``key`` sits in the sections of :data:`SECTIONS` (``section.sub.key``), if anywhere."""

    def search(conf: Any, prefix: str) -> Optional[str]:
        if not isinstance(conf, Mapping):
            return None
        for name, value in conf.items():
            if name == key:
                return f"{prefix}.{name}"
            found = search(value, f"{prefix}.{name}")
            if found:
                return found
        return None

    for section, _ in SECTIONS:
        found = search(getattr(args, section, None), section)
        if found:
            return found
    return None


def check_config(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` as ``voc_train`` does, check the keys and build the model (CPU).

    Returns:
        The parsed arguments.

    Raises:
        ConfigError: naming the config file, the section and the key (or the build error).
    """
    import torch

    from espnet_hifigan.contract import ContractError, load_mapping
    from espnet_hifigan.train.task import VocoderTask

    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", default=None)
    config_file = config.parse_known_args(list(argv))[0].config
    if config_file is not None:
        try:  # ESPnet's parser would raise the YAML error as a traceback
            load_mapping(config_file)
        except ContractError as e:
            raise ConfigError(str(e)) from None
    args = VocoderTask.get_parser().parse_args(list(argv))
    source = args.config or "the command-line options"
    check_numbers(args, source, argv)
    check_keys(args, source)
    build_args = argparse.Namespace(**vars(args))
    # The statistics come from stage 4; their file need not exist yet.
    build_args.normalize = None
    try:
        with torch.device("cpu"):
            model = VocoderTask.build_model(build_args)
            VocoderTask.build_optimizers(build_args, model)
    except (TypeError, ValueError, KeyError, RuntimeError, AssertionError) as e:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        where = find_key(args, unknown.group(1)) if unknown else None
        if where is not None:
            raise ConfigError(f"{source}: unknown key {where} ({e}); fix or remove it") from e
        raise ConfigError(f"{source}: the model cannot be built from it: {type(e).__name__}: {e}") from e
    if args.output_dir is not None and not args.collect_stats:
        # A whole training command (voc.sh stage 5, before it writes run.sh or rotates train.log):
        # every check that would refuse the run, the data and the resume, writing nothing.
        from espnet_hifigan.train.resume import CheckpointError

        try:
            VocoderTask.check_before_writing(args)
        except (ContractError, CheckpointError) as e:
            raise ConfigError(str(e)) from None
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the check; return the exit status (argparse errors exit with 2)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    try:
        args = check_config(argv)
    except ConfigError as e:
        logging.error(str(e))
        return 1
    logging.info(f"{args.config}: every section's keys are known and the model builds")
    return 0


def console_main() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()

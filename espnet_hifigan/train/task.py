"""The ESPnet2 vocoder task: wires the choices; all behaviour lives in the modules."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Collection, Dict, Iterator, List, NoReturn, Optional, Tuple

import numpy as np
import torch
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.tasks.abs_task import AbsTask, optim_classes
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool
from typeguard import typechecked

from espnet_hifigan.contract import ContractError
from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.train.data_checks import check_training_data, write_vocoder_contract
from espnet_hifigan.train.espnet_model import ESPnetHiFiGANModel
from espnet_hifigan.train.feature_lengths import CheckedCollate
from espnet_hifigan.train.preflight import check_resume
from espnet_hifigan.train.resume import CheckpointError
from espnet_hifigan.train.segments import SegmentCollate
from espnet_hifigan.train.trainer import VocoderTrainer

feats_extract_choices = ClassChoices(
    "feats_extract",
    classes=dict(log_mel=LogMelSpectrogram),
    type_check=torch.nn.Module,
    default="log_mel",
)
normalize_choices = ClassChoices(
    "normalize",
    classes=dict(global_mvn=GlobalMVN),
    type_check=AbsNormalize,
    default=None,
    optional=True,
)
generator_choices = ClassChoices(
    "generator",
    classes=dict(hifigan=HiFiGANGenerator),
    type_check=torch.nn.Module,
    default="hifigan",
)
discriminator_choices = ClassChoices(
    "discriminator",
    classes=dict(hifigan=HiFiGANDiscriminator),
    type_check=torch.nn.Module,
    default="hifigan",
)


@contextlib.contextmanager
def _logging_left_unconfigured() -> Iterator[None]:
    """Within the block, logging calls (building the model logs) go nowhere instead of configuring
    logging with Python's defaults (``logging.info`` does when nothing is configured), which would
    make ESPnet's worker's own configuration a no-op: its INFO lines would be lost."""
    root = logging.getLogger()
    handler = None if root.handlers else logging.NullHandler()
    if handler is not None:
        root.addHandler(handler)
    try:
        yield
    finally:
        if handler is not None:
            root.removeHandler(handler)


def _refuse(message: str) -> NoReturn:
    """One ERROR line (in ESPnet's log format: its worker has not configured logging yet), exit 1."""
    if not logging.getLogger().handlers:
        host = os.uname()[1].split(".")[0]
        logging.basicConfig(
            level=logging.INFO, format=f"[{host}] %(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"
        )
    logging.error(message)
    sys.exit(1)


class VocoderTask(AbsTask):
    """Mel-to-waveform vocoder training with ESPnet's GANTrainer."""

    # One optimizer for the generator, one for the discriminator.
    num_optimizers: int = 2
    class_choices_list = [
        feats_extract_choices,
        normalize_choices,
        generator_choices,
        discriminator_choices,
    ]
    trainer = VocoderTrainer

    @classmethod
    @typechecked
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group("Task related")
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default=get_default_kwargs(ESPnetHiFiGANModel),
            help="The keyword arguments for the model class.",
        )
        group.add_argument(
            "--assume_raw_features",
            type=str2bool,
            default=False,
            help="true: feats.scp training data without a feature contract next to it (feats_conf.yaml) is "
            "taken as raw log-mel of feats_extract_conf; false: such data is refused",
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    def main_worker(cls, args: argparse.Namespace) -> None:
        """ESPnet's worker, after every check that may refuse the run (before anything is written).

        :meth:`check_before_writing` runs before ESPnet's worker writes ``config.yaml``: a refused
        run (one ERROR line, exit 1) leaves ``--output_dir`` as it was. The experiment then
        records its own contract as ``<output_dir>/feature_contract.yaml``.
        """
        if not args.collect_stats and not args.print_config:
            try:
                with _logging_left_unconfigured():
                    unchecked = cls.check_before_writing(args)
            except (ContractError, CheckpointError) as e:
                _refuse(str(e))
            for scp in unchecked:
                logging.warning(f"{scp}: no feature contract; declared raw (--assume_raw_features), not checked")
            if getattr(args, "dist_rank", None) in (None, 0) and args.output_dir is not None:
                Path(args.output_dir).mkdir(parents=True, exist_ok=True)
                write_vocoder_contract(vars(args), args.output_dir)
        super().main_worker(args)

    @classmethod
    def check_before_writing(cls, args: argparse.Namespace) -> List[str]:
        """Every check that may refuse a training run; reads only, writes nothing.

        The pre-extracted feats.scp files must carry the model's feature settings (the
        ``feats_conf.yaml``/``feature_contract.yaml`` next to them, :func:`check_training_data`),
        and a ``--resume`` must fit the experiment's checkpoint (:func:`check_resume`).

        Returns:
            The scp files declared raw by ``--assume_raw_features`` (unchecked; worth a warning).

        Raises:
            ContractError: the data or the experiment's features/statistics differ (a table).
            CheckpointError: the checkpoint cannot be resumed with this configuration.
        """
        unchecked = check_training_data(vars(args))
        check_resume(args, cls.build_model, cls.build_optimizers)
        return unchecked

    @classmethod
    @typechecked
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable[
        [Collection[Tuple[str, Dict[str, np.ndarray]]]],
        Tuple[List[str], Dict[str, torch.Tensor]],
    ]:
        collate = CheckedCollate(CommonCollateFn(float_pad_value=0.0, int_pad_value=0), vars(args))
        if not train:
            return collate  # validation (and --collect_stats) batches stay whole utterances
        # Training: only one segment per utterance leaves the data loader.
        feats_extract = feats_extract_choices.get_class(args.feats_extract)(**args.feats_extract_conf)
        segment_size = (args.model_conf or {}).get(
            "segment_size", inspect.signature(ESPnetHiFiGANModel).parameters["segment_size"].default
        )
        return SegmentCollate(collate, segment_size, feats_extract.hop_length, feats_extract.silence_value())

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        return None

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return () if inference else ("speech",)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("feats", "speech") if inference else ("feats",)

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> ESPnetHiFiGANModel:
        if not getattr(args, "unused_parameters", True):
            # The discriminator turn never uses the generator's parameters (and the generator
            # turn's gradients reach the discriminator only through its inputs): DDP must look
            # for unused parameters. Without DDP this changes nothing.
            logging.info("unused_parameters: true (required by GAN training under DDP)")
            args.unused_parameters = True
        feats_extract = feats_extract_choices.get_class(args.feats_extract)(**args.feats_extract_conf)
        normalize = None
        if args.normalize is not None:
            normalize = normalize_choices.get_class(args.normalize)(**args.normalize_conf)
        generator = generator_choices.get_class(args.generator)(
            in_channels=feats_extract.output_size(), **args.generator_conf
        )
        discriminator = discriminator_choices.get_class(args.discriminator)(**args.discriminator_conf)
        return ESPnetHiFiGANModel(
            feats_extract=feats_extract,
            normalize=normalize,
            generator=generator,
            discriminator=discriminator,
            **args.model_conf,
        )

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: ESPnetHiFiGANModel) -> List[torch.optim.Optimizer]:
        optimizers = []
        for name, conf, params in (
            (args.optim, args.optim_conf, model.generator.parameters()),
            (args.optim2, args.optim2_conf, model.discriminator.parameters()),
        ):
            optim_class = optim_classes.get(name)
            if optim_class is None:
                raise ValueError(f"optimizer must be one of {list(optim_classes)}: {name}")
            optimizers.append(optim_class(params, **conf))
        return optimizers

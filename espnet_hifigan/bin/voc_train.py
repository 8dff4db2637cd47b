"""Train a HiFi-GAN vocoder with ESPnet2's trainer (``--print_config``, ``--resume``, DDP...)."""

from typing import List, Optional

from espnet_hifigan.train.task import VocoderTask


def get_parser():
    """Return the ESPnet argument parser of the vocoder task."""
    return VocoderTask.get_parser()


def main(cmd: Optional[List[str]] = None) -> None:
    """Run training (or ``--collect_stats``) with the given command-line arguments."""
    VocoderTask.main(cmd=cmd)


def console_main() -> None:
    """Console entry point ``espnet-hifigan-train``."""
    main()


if __name__ == "__main__":
    main()

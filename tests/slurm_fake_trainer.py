"""A stand-in for a preemptible trainer, used by tests/test_slurm.py.

It counts steps, keeps the count in a checkpoint file, resumes from it, and on SIGUSR1 or
SIGTERM saves the checkpoint and exits with code 99: the contract scripts/slurm.sh
--requeue true expects from the real trainer. Options it does not know (the distributed
options scripts/launch_train.sh appends) are ignored, except --dist_rank R, which makes the
checkpoint <checkpoint>.rankR so that every process of a multi-process run keeps its own.
"""

import argparse
import json
import os
import signal
import sys
import time

PREEMPTED_EXIT_CODE = 99


def main() -> None:
    """Run the fake training loop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="JSON checkpoint path")
    parser.add_argument("--steps", type=int, default=20, help="steps to train in total")
    parser.add_argument("--step_time", type=float, default=0.5, help="seconds per step")
    parser.add_argument("--dist_rank", type=int, default=None, help="rank (from launch_train.sh)")
    args, _ = parser.parse_known_args()
    if args.dist_rank is not None:
        args.checkpoint = f"{args.checkpoint}.rank{args.dist_rank}"

    step = 0
    if os.path.exists(args.checkpoint):
        with open(args.checkpoint) as f:
            step = json.load(f)["step"]
        print(f"rank {args.dist_rank}: resumed from step {step}", flush=True)
    else:
        print("starting from scratch", flush=True)

    def save() -> None:
        tmp = args.checkpoint + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"step": step}, f)
        os.replace(tmp, args.checkpoint)

    def on_signal(signum, frame) -> None:
        save()
        name = signal.Signals(signum).name
        print(f"rank {args.dist_rank}: got {name} at step {step}: checkpoint saved, exiting", flush=True)
        sys.exit(PREEMPTED_EXIT_CODE)

    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    while step < args.steps:
        time.sleep(args.step_time)
        step += 1
        print(f"step {step}", flush=True)
        save()
    print(f"rank {args.dist_rank}: finished at step {step}", flush=True)


if __name__ == "__main__":
    main()

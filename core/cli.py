"""The ``bioscale`` command line.

Exit statuses: 0 done; 2 bad input found before any work (config, rule, data, plugin,
checkpoint, a run folder in use); 3 training diverged (NaN/inf loss; last good checkpoint
kept); 4 a rule or observer raised or broke a hook contract mid-run; 5 the run folder cannot
be written (disk full, read-only); 1 any other error; 130 interrupted (Ctrl-C, SIGINT); 143
terminated (SIGTERM, as sent by ``kill`` and by batch schedulers before they kill a job).
Both stop the same way: the run's summary is written with status ``interrupted`` and the
last epoch's checkpoint is kept, so ``bioscale resume`` continues from it. A closed standard
output (``bioscale train ... | head``) silences the output; the command goes on.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback

from .errors import BioscaleError, StopRun, UsageError

EPILOG = """examples:
  bioscale compare                                  every installed rule on the shipped digits
  bioscale train rule=fa data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=100
  bioscale resume runs/20261127-120000-fa-mnist-mnist_fc-s0 trainer.epochs=120
  bioscale sweep rule=dtp model=mnist_fc data=mnist data.root=../shared/data trainer.epochs=20 sweep.trials=20 sweep.workers=2
  bioscale rules --json
  bioscale models                                   architectures for model=NAME (bioscale datasets: data=NAME)
  bioscale config rule=bp model=mnist_fc           print the resolved config, run nothing
"""
RESUME_USAGE = "bioscale resume RUN_FOLDER [trainer.key=value ...]"


def _command(sub, name: str, help: str, **more) -> argparse.ArgumentParser:
    """A subcommand whose one-line help is also its own ``--help`` description."""
    return sub.add_parser(name, help=help, description=help, **more)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bioscale",
        description="Train networks with backprop and biologically motivated learning rules.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _command(sub, "train", help="train one rule (key=value overrides)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p = _command(sub, "resume", help="continue a run from its checkpoint", usage=RESUME_USAGE)
    p.add_argument("run_dir", metavar="RUN_FOLDER", nargs="?")  # checked in dispatch: argparse's own message misleads
    p.add_argument("overrides", nargs="*", metavar="trainer.key=value")
    p = _command(sub, "sweep", help="search a rule's settings on Optuna (sweep.trials=N sweep.workers=K ...)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p = _command(
        sub,
        "reproduce",
        help="the paper's grid for one table (table1a, table1b, table2) or a spec file's cells, cached per cell",
    )
    p.add_argument("args", nargs="+", metavar="TABLE | SPEC.yaml | key=value")
    p = _command(sub, "compare", help="train several rules on the same data and model; table + plot")
    p.add_argument("args", nargs="*", metavar="RULE[:k=v,...] | key=value")
    for name, what in (
        ("rules", "installed learning rules"),
        ("observers", "installed observer plugins"),
        ("models", "installed architectures (model=NAME)"),
        ("datasets", "installed data sets (data=NAME)"),
    ):
        p = _command(sub, name, help=f"list {what}")
        p.add_argument("--json", action="store_true", help="machine-readable output")
    p = _command(sub, "config", help="print the resolved config (and the rule's) without running")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    return parser


def dispatch(args) -> int:
    if args.command == "train":
        from .commands import train

        return train.main(args.overrides)
    if args.command == "resume":
        from .commands import resume

        if args.run_dir is None or ("=" in args.run_dir and not os.path.exists(args.run_dir)):
            raise UsageError(
                f"resume needs a run folder (the one train printed) before any key=value; usage: {RESUME_USAGE}"
            )
        return resume.main(args.run_dir, args.overrides)
    if args.command == "sweep":
        from .commands import sweep

        return sweep.main(args.overrides)
    if args.command == "reproduce":
        from .commands import reproduce

        return reproduce.main(args.args)
    if args.command == "compare":
        from .commands import compare

        return compare.main(args.args)
    if args.command in ("rules", "observers", "models", "datasets"):
        from .commands import listing

        return listing.main(args.command, args.json)
    if args.command == "config":
        from .commands import show_config

        return show_config.main(args.overrides)
    raise AssertionError(args.command)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it stops like Ctrl-C does."""


def _raise_terminated(signum, frame):
    raise Terminated()


class PipeSafe:
    """A text stream that stops writing, instead of raising, once its reader has gone (EPIPE):
    the file descriptor is pointed at /dev/null, so the final flush succeeds too."""

    def __init__(self, stream):
        self._stream = stream

    def _guard(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
            return None

    def write(self, text: str) -> int:
        self._guard(self._stream.write, text)
        return len(text)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    stdout = sys.stdout
    if hasattr(stdout, "fileno"):
        try:
            stdout.fileno()
            sys.stdout = PipeSafe(stdout)
        except (OSError, ValueError):  # not a real file (captured by a test runner)
            pass
    try:
        return dispatch(args)
    except StopRun as exc:
        print(f"bioscale: stopped: {exc}", file=sys.stderr, flush=True)
        return exc.exit_status
    except BioscaleError as exc:
        print(f"bioscale: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_status
    except Terminated:
        print("bioscale: terminated (SIGTERM); the last checkpoint is kept", file=sys.stderr, flush=True)
        return 143
    except KeyboardInterrupt:
        print("bioscale: interrupted; the last checkpoint is kept", file=sys.stderr, flush=True)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            "bioscale: internal error (a run's summary says failed, with the error); please report it",
            file=sys.stderr,
            flush=True,
        )
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.stdout = stdout


def entry() -> None:
    """The ``bioscale`` command: :func:`main`, and its status as the process's exit status (under
    torchrun without the interpreter's finalization: ``distributed.end_launched_process``)."""
    code = main()
    from .distributed import end_launched_process  # torch is imported by then, if at all

    end_launched_process(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()

"""The `edtrain` command: one subcommand per workflow stage.

Each subcommand lives in the module that does the work, as a pair
``add_arguments(parser)`` / ``main(args)``; modules are imported only for the
command that runs, so ``edtrain --help`` stays fast and a broken optional
dependency cannot take down unrelated stages.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("edtrain.simulation.simulate", "write a synthetic EOS-style production"),
    "gallery": ("edtrain.simulation.gallery", "draw a PNG gallery of simulated events"),
    "chunk": ("edtrain.dataset.chunk", "assemble one chunk of a production's files"),
    "assemble": ("edtrain.dataset.assemble", "combine chunk directories into one dataset"),
    "train": ("edtrain.train", "train one version"),
    "predict": ("edtrain.predict", "predict the common test set and score it"),
    "insights": ("edtrain.insights", "regenerate insights.md, summary.csv and plots"),
    "apply": ("edtrain.apply", "a trained version's directions for every triplet of new data"),
    "import-legacy": ("edtrain.legacy", "import the predecessor's configs or result folders"),
    "hyperopt-propose": ("edtrain.hyperopt.propose", "propose one hyperopt trial's config"),
    "hyperopt-trial": ("edtrain.hyperopt.trial", "train one hyperopt trial and record its score"),
    "hyperopt-select": ("edtrain.hyperopt.select", "pick the best trial; trial table and plots"),
    "hyperopt-apply": ("edtrain.hyperopt.apply", "merge the best parameters into config.json"),
}


def _overview() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items())
    return (
        f"usage: edtrain COMMAND [options]\n\ncommands:\n{rows}\n\n"
        "The workflow's rules run these (`snakemake` is the usual entry point); by hand, e.g.:\n"
        "  edtrain simulate --out production --files 4 --events-per-file 200\n"
        "  edtrain gallery --production production --out gallery.png\n"
        "  edtrain apply --model results/v20/model.keras --inputs DIR --out v20.parquet\n\n"
        "edtrain COMMAND --help for its options"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # a usage error, as for any command line tool: say what there is
        print(_overview(), file=sys.stderr)
        return 2
    if argv[0] in {"-h", "--help"}:
        print(_overview())
        return 0
    if argv[0] == "--version":
        from edtrain import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"edtrain: unknown command {name!r}\n\n{_overview()}", file=sys.stderr)
        return 2
    if {"-h", "--help"} & set(rest):
        # Help computes nothing: keep TensorFlow's start-up lines (oneDNN, CPU features), which
        # the train and predict modules' Keras import prints before any logging is set up,
        # out of it. Set before the import; a run without help is left as it is.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"edtrain {name}", description=COMMANDS[name][1])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""`gan-jax evaluate RESULTS`: the metrics table of a results.json written by `gan-jax train`."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="results.json URI, or the folder that holds it")


def run(args: argparse.Namespace) -> int:
    from gan_jax.artifacts import storage
    from gan_jax.evaluation.cross_validation import format_summary

    uri = args.results if args.results.endswith(".json") else f"{args.results.rstrip('/')}/results.json"
    try:
        results = json.loads(storage.read_text(uri))
    except json.JSONDecodeError as e:
        raise ValueError(f"{uri}: not a results JSON file ({e})") from None
    if "summary" not in results:
        raise ValueError(f"{uri}: no 'summary' field; expected a results.json from gan-jax train")
    print(format_summary(results))
    return 0

"""The ``shellwatch`` command line: ``detect``, ``record``, ``replay``, ``worker``, ``demo``, ``check-rules``."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import IO

from shellwatch.core.pipeline import Pipeline, worker_refusal
from shellwatch.core.rule_runner import RuleRunner, RunnerConfig
from shellwatch.kafka.clock import wall_clock_ms
from shellwatch.rules.eql_rule import load_eql_rules, load_rules_setting
from shellwatch.rules.loader import RuleError
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule
from shellwatch.settings import Settings, SettingsError
from shellwatch.tools.check_rules import describe, run_check_rules
from shellwatch.tools.detect import load_expected, report_detected, run_detect, run_detect_file
from shellwatch.tools.detect_rules import run_detect_rules
from shellwatch.tools.expectations import ExpectationError
from shellwatch.tools.replay.cli import add_record_parser, add_replay_parser, run_record, run_replay
from shellwatch.tools.terminal import printable

# --help prints this as it is, so plain text (the module docstring above is reStructuredText).
DESCRIPTION = (
    "Real-time detection of shells spawned by exploited Java applications, over Kafka. "
    "Settings come from SHELLWATCH_* and KAFKA_* environment variables; "
    "'shellwatch COMMAND --help' shows a command's options."
)
SAMPLE = "sample-attack.ndjson"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shellwatch", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser("detect", help="detect over NDJSON ECS events; alerts to stdout")
    detect.add_argument("input", help="NDJSON file, '-' for stdin, or 'sample' for the bundled sample")
    detect.add_argument("--allowed-lateness-ms", type=int, help="override SHELLWATCH_ALLOWED_LATENESS_MS")
    detect.add_argument("--no-prefilter", action="store_true", help="decode and validate every line")
    detect.add_argument("--no-mask-secrets", action="store_true", help="quote events without masking")
    detect.add_argument("--no-group", action="store_true", help="raise every shell alert (no grouping by period)")
    detect.add_argument("--expect", type=Path, help="compare the alerts with these expected ones; exit 1 on a diff")
    detect.add_argument("--expectations", action="store_true", help="print expectation lines instead of alerts")
    detect.add_argument(
        "--rules",
        action="append",
        type=Path,
        metavar="PATH",
        help="run exactly these EQL rule files (detection-rules TOML) or directories of them instead of the "
        "bundled rules (--no-prefilter and --no-group do not apply)",
    )
    add_record_parser(commands)
    add_replay_parser(commands)
    check = commands.add_parser("check-rules", help="load and validate the rule files, then exit")
    check.add_argument(
        "--rules",
        action="append",
        type=Path,
        metavar="PATH",
        help="EQL rule files (detection-rules TOML) or directories of them: one line per rule; exit 1 on any error",
    )
    commands.add_parser("demo", help="run broker, worker and the bundled sample end to end; print the alerts")
    worker = commands.add_parser("worker", help="run the Kafka stream worker (settings from SHELLWATCH_* variables)")
    worker.add_argument("--loglevel", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-rules" and args.rules:
        return run_check_rules(args.rules, sys.stdout)
    if args.command == "detect" and args.rules:
        return _detect_rules(args)
    try:
        settings = Settings.from_env(os.environ)
        rule = load_reverse_shell_rule(settings.rule_file)
        shell_rule = load_shell_rule(settings.shell_rule_file, settings.allowlist_file)
        rules = load_rules_setting(settings.rules_paths)
    except (SettingsError, RuleError) as exc:
        print(f"shellwatch: {exc}", file=sys.stderr)
        return 2
    refused = [reason for reason in (worker_refusal(r, [rule.meta.id, shell_rule.meta.id]) for r in rules) if reason]
    if refused:
        for reason in refused:
            print(f"shellwatch: SHELLWATCH_RULES: refused: {printable(reason)}", file=sys.stderr)
        return 2
    if args.command == "check-rules":
        print(f"{rule.meta.id} v{rule.meta.version}: ok (digest {rule.digest})")
        print(
            f"{shell_rule.meta.id} v{shell_rule.meta.version}: ok (digest {shell_rule.digest}, "
            f"{len(shell_rule.allowlist)} allowlist entries)"
        )
        for extra in rules:
            print(f"{describe(extra)} (SHELLWATCH_RULES)")
        return 0
    if args.command == "demo":
        from shellwatch.tools.demo import run_demo  # noqa: PLC0415 - only these commands pay for Kafka clients

        return run_demo(settings, rule, shell_rule, os.environ, sys.stdout, clock_ms=wall_clock_ms)
    if args.command == "worker":
        from shellwatch.worker.main import run_worker  # noqa: PLC0415 - only the worker pays for importing Faust

        return run_worker(settings, rule, shell_rule, rules, loglevel=args.loglevel)
    if args.command == "record":
        return run_record(args, settings.kafka, sys.stderr)
    if args.command == "replay":
        return run_replay(args, settings.kafka, Pipeline(rule, settings.pipeline, shell_rule, rules=rules), sys.stdout)
    config = settings.pipeline
    if args.allowed_lateness_ms is not None:
        if args.allowed_lateness_ms < 0:
            print("shellwatch: --allowed-lateness-ms must be >= 0", file=sys.stderr)
            return 2
        config = replace(config, allowed_lateness_ms=args.allowed_lateness_ms)
    if args.no_prefilter:
        config = replace(config, prefilter_enabled=False)
    if args.no_mask_secrets:
        config = replace(config, mask_secrets=False)
    if args.no_group:
        config = replace(config, grouping_enabled=False)
    pipeline = Pipeline(rule, config, shell_rule, rules=rules)

    def run(handle: IO[bytes], sink: IO[bytes], from_file: bool) -> int:
        if from_file:  # screened a block at a time
            return run_detect_file(handle, pipeline, sink, sys.stderr, wall_clock_ms)
        return run_detect(handle, pipeline, sink, sys.stderr, wall_clock_ms)  # line by line: no line waits

    return _detect_input(args, run)


def _detect_rules(args: argparse.Namespace) -> int:
    """``detect --rules``: the given EQL rule files only; the bundled rule files are not read."""
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"shellwatch: {exc}", file=sys.stderr)
        return 2
    loaded = load_eql_rules(args.rules)
    for problem in loaded.problems:
        print(f"shellwatch: {printable(str(problem))}", file=sys.stderr)
    if loaded.problems:
        return 2
    if not loaded.rules:
        print("shellwatch: --rules: no EQL rule files found", file=sys.stderr)
        return 2
    lateness = settings.pipeline.allowed_lateness_ms
    if args.allowed_lateness_ms is not None:
        if args.allowed_lateness_ms < 0:
            print("shellwatch: --allowed-lateness-ms must be >= 0", file=sys.stderr)
            return 2
        lateness = args.allowed_lateness_ms
    config = RunnerConfig(
        allowed_lateness_ms=lateness,
        mask_secrets=settings.pipeline.mask_secrets and not args.no_mask_secrets,
    )
    runner = RuleRunner(loaded.rules, config)

    def run(handle: IO[bytes], sink: IO[bytes], from_file: bool) -> int:
        return run_detect_rules(handle, runner, sink, sys.stderr, wall_clock_ms)

    return _detect_input(args, run)


def _detect_input(args: argparse.Namespace, run: Callable[[IO[bytes], IO[bytes], bool], int]) -> int:
    """Run ``detect`` over its input (a file, stdin or the sample), then ``--expect``/``--expectations``."""
    checked = args.expect is not None or args.expectations
    try:
        expected = load_expected(args.expect)
        sink = io.BytesIO() if checked else sys.stdout.buffer
        if args.input == "-":
            status = run(sys.stdin.buffer, sink, False)
        else:
            path = Path(str(resources.files("shellwatch.samples").joinpath(SAMPLE)))
            with (path if args.input == "sample" else Path(args.input)).open("rb") as handle:
                status = run(handle, sink, True)
    except OSError as exc:
        print(f"shellwatch: cannot read {exc.filename or args.input}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ExpectationError as exc:
        print(f"shellwatch: {exc}", file=sys.stderr)
        return 2
    if not checked or status != 0:
        return status
    assert isinstance(sink, io.BytesIO)
    return report_detected(sink.getvalue(), expected, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())

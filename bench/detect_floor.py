"""Where ``detect``'s time goes per line, layer by layer, against the budget a 10x lead on Elastic's eql leaves.

On one NDJSON file (generated from the benchmark's workload, or ``--ndjson``), in this process, CPU time:

- eql: orjson per line, ``eql.Event``, the PythonEngine on the sequence rule (as ``bench/engines.py`` runs it);
- shellwatch, each layer timed alone on the records that need it: ``screen`` (the byte pre-filter on every line,
  a file's blocks screened in place as ``detect`` runs it; batched as the worker runs it, and one line at a time,
  for comparison), ``parse`` (orjson, on the
  records it passes), ``project`` (the flatten into the rules' fields, from parsed documents), ``typed``
  (building the frozen events from that projection), ``sequence`` (the correlator), ``shell rule`` (the
  classifier on process events), ``alerts`` (the alert documents), and the whole of ``run_detect`` as the
  command runs a file.

The budget is eql's CPU per line divided by ten. The floor is what no change to the rules' code removes: the
screen on every line, then parsing and projecting the lines it passes. Each layer is the best of ``--repeat``
runs (the correlator and the classifier start from a fresh pipeline each time).

    python -m bench.detect_floor --events 200000 --java-share 0.35
"""

from __future__ import annotations

import argparse
import gc
import io
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.engines import run_eql
from bench.workload import Generator, Workload
from shellwatch.core.classify import classify
from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.ecs.events import Event, NetworkEvent, ProcessEvent
from shellwatch.ecs.fields import flatten
from shellwatch.formats.event_codec import DecodeError, events_from_document
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule
from shellwatch.tools.detect import FILE_BLOCK_BYTES, run_detect_file

WHOLE = "whole (run_detect_file, as `detect` runs a file)"
WORKER_BATCH = 4096  # records per screened batch in the worker-style screen (a fetch brings up to 10,000)


def _best(repeat: int, run: Callable[[], object]) -> float:
    """The least CPU seconds of ``repeat`` runs. The inputs prepared for the layers (every parsed document, every
    decoded event) are frozen out of the collector first: the pipeline never holds them all at once, and
    collections scanning them would be charged to whatever layer allocates."""
    gc.collect()
    gc.freeze()
    best = float("inf")
    try:
        for _ in range(repeat):
            started = time.process_time()
            run()
            best = min(best, time.process_time() - started)
    finally:
        gc.unfreeze()
    return best


def _each(function: Callable[[Any], object], items: Sequence[Any]) -> Callable[[], None]:
    """A run of ``function`` on every item, its results dropped (a list of them would be collected, and charged)."""

    def run() -> None:
        for item in items:
            function(item)

    return run


def _pipeline(*, shell: bool) -> Pipeline:
    return Pipeline(load_reverse_shell_rule(), PipelineConfig(), load_shell_rule() if shell else None)


def _blocks(text: bytes) -> list[bytes]:
    """``text`` in blocks of whole lines of about ``FILE_BLOCK_BYTES``, as ``detect`` reads a file."""
    blocks, start = [], 0
    while start < len(text):
        end = text.rfind(b"\n", start, start + FILE_BLOCK_BYTES) + 1 or text.find(b"\n", start) + 1 or len(text)
        blocks.append(text[start:end])
        start = end
    return blocks


def layers(lines: Sequence[bytes], repeat: int) -> dict[str, Any]:
    """CPU seconds of each layer on ``lines``, and the counts they ran on."""
    pipeline = _pipeline(shell=True)
    accepts = pipeline.prefilter.accepts
    kept = [line for line in lines if accepts(line)]
    fields = pipeline.correlator.fields
    documents = [orjson.loads(line) for line in kept]
    projected = [flatten(doc, fields) for doc in documents]
    decoded = [pipeline.decode(line) for line in kept]
    events: list[Event] = [e for d in decoded if not isinstance(d, DecodeError) for e in d.events]
    processes = [e for e in events if isinstance(e, ProcessEvent)]
    shell_rule = load_shell_rule()

    bundled = [e for e in events if isinstance(e, NetworkEvent | ProcessEvent)]

    def sequence() -> None:
        correlator = _pipeline(shell=False).correlator
        for event in bundled:
            correlator.observe(event)

    def shell() -> None:
        for event in processes:
            classify(shell_rule, event)

    def alerts() -> None:
        fresh = _pipeline(shell=True)
        for event in events:
            fresh.observe((event,), 0)

    text = b"".join(line + b"\n" for line in lines)

    def whole() -> None:  # as the command runs a file
        run_detect_file(io.BytesIO(text), _pipeline(shell=True), io.BytesIO(), io.StringIO(), lambda: 0)

    chunks = [lines[i : i + WORKER_BATCH] for i in range(0, len(lines), WORKER_BATCH)]
    blocks = _blocks(text)

    project = _best(repeat, _each(lambda doc: flatten(doc, fields), documents))
    seconds = {
        "screen": _best(repeat, _each(pipeline.prefilter.accepted_lines, blocks)),  # a file's blocks, as detect
        "screen, batched as the worker": _best(repeat, _each(pipeline.prefilter.accepted, chunks)),
        "screen, one line at a time": _best(repeat, _each(accepts, lines)),
        "parse": _best(repeat, _each(orjson.loads, kept)),
        "project": project,
        # the whole decode from a parsed document, less the projection it starts with: building the typed events
        "typed": _best(repeat, _each(lambda doc: events_from_document(doc, b"", fields), documents)) - project,
        "sequence": _best(repeat, sequence),
        "shell rule": _best(repeat, shell),
        # observe() is both rules plus the alert documents: what it costs beyond the two
        "alerts": _best(repeat, alerts),
        WHOLE: _best(repeat, whole),
    }
    seconds["alerts"] -= seconds["sequence"] + seconds["shell rule"]
    return {
        "lines": len(lines),
        "kept": len(kept),
        "events": len(events),
        "process_events": len(processes),
        "fields_read": len(projected[0]) if projected else 0,
        "seconds": seconds,
    }


def report(measured: dict[str, Any], eql_cpu_s: float) -> list[str]:
    lines, kept = measured["lines"], measured["kept"]
    s = measured["seconds"]
    per_line = {k: v / lines * 1e6 for k, v in s.items()}
    per_kept = {k: v / kept * 1e6 if kept else 0.0 for k, v in s.items()}
    eql_us = eql_cpu_s / lines * 1e6
    budget_line = eql_us / 10
    share = kept / lines
    # what no rule code can avoid: look at every line, parse what passes, read the fields the rules read
    floor_line = per_line["screen"] + share * (per_kept["parse"] + per_kept["project"])
    return [
        f"{lines:,} lines; the screen passes {kept:,} ({share:.1%}); {measured['events']:,} events, "
        f"{measured['process_events']:,} of them process events; the rules read {measured['fields_read']} fields "
        "of a passing document.",
        "",
        "| layer | CPU µs per line | CPU µs per passing record |",
        "|---|---:|---:|",
        *(f"| {k} | {per_line[k]:.2f} | {per_kept[k]:.2f} |" for k in s),
        f"| eql (orjson + Event + engine, every line) | {eql_us:.2f} | |",
        "",
        f"- detect / eql in this process: **{eql_us / per_line[WHOLE]:.1f}x** by CPU "
        f"({per_line[WHOLE]:.2f} vs {eql_us:.2f} µs per line).",
        f"- Budget for 10x: **{budget_line:.2f} µs per line**.",
        f"- Floor, before any rule decides anything (the screen on every line, then parsing and projecting the "
        f"{share:.1%} it passes): **{floor_line:.2f} µs per line**, {floor_line / budget_line:.0%} of the budget.",
        f"- Left for the two rules and the alerts within the budget: {max(0.0, budget_line - floor_line):.2f} µs "
        f"per line, {max(0.0, budget_line - floor_line) / share if share else 0:.2f} µs per passing record; they "
        f"take {per_kept['typed'] + per_kept['sequence'] + per_kept['shell rule'] + per_kept['alerts']:.2f} "
        "(typed events, sequence, shell rule, alerts).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--java-share", type=float, default=0.35)
    parser.add_argument("--ndjson", type=Path, help="measure this file instead of a generated workload")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shellwatch-floor-") as tmp:
        ndjson = args.ndjson
        if ndjson is None:
            # the benchmark's density (1,000 attacks and 4,000 benign Java connections per 2 M events): eql's cost per
            # line grows with the sequences it has open, so a denser file would flatter the ratio
            workload = Workload(
                events=args.events,
                attacks=max(1, args.events // 2_000),
                java_connections=args.events // 500,
                java_share=args.java_share,
            )
            ndjson = Path(tmp) / "events.ndjson"
            with ndjson.open("wb") as out:
                for record in Generator(workload).records():
                    out.write(record.value + b"\n")
        lines = [line for line in ndjson.read_bytes().splitlines() if line.strip()]
        measured = layers(lines, args.repeat)
        _seconds, eql_cpu_s, _ids = run_eql(ndjson)
    print(f"detect's layers on {ndjson if args.ndjson else f'{args.events:,} events, {args.java_share:.0%} Java'}")
    print("\n".join(report(measured, eql_cpu_s)))


if __name__ == "__main__":
    main()

"""Targets, and the results as JSON plus a Markdown table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.rule_costs import markdown as rule_costs_markdown


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    worker = results["worker"]
    paced = worker.get("paced", {})
    latency = paced.get("sequence_alert_latency_ms", {})
    engines = results["detect_vs_eql"]
    rss_growth = worker["rss"].get("paced_growth_pct")
    c_a = results["ratios"]["c/a"]
    found: dict[str, dict[str, Any]] = {
        "c/a >= 0.5": {"value": c_a, "met": c_a is not None and c_a >= 0.5},
        "worker alerts == expected": {
            "value": worker["throughput"]["alerts"]["ok"],
            "met": worker["throughput"]["alerts"]["ok"],
        },
    }
    if engines is not None:
        found["detect >= 10x eql (CPU time), same alerts"] = {
            "value": f"{engines['speedup']}x, same={engines['same_alerts']}",
            "met": engines["speedup"] >= 10 and engines["same_alerts"],
        }
    state = worker.get("state")
    if state is not None and state.get("at_end") is not None:
        end = state["at_end"]
        found["state within its cap (hosts held <= SHELLWATCH_MAX_HOSTS)"] = {
            "value": f"{end.get('hosts')} <= {state['max_hosts']}; host evictions {end['evictions'].get('host', 0)}",
            "met": end.get("hosts") is not None and end["hosts"] <= state["max_hosts"],
        }
    return found | {
        "p99 latency <= 1 s at the paced rate": {
            "value": latency.get("p99"),
            "met": latency.get("p99") is not None and latency["p99"] <= 1000 and paced["alerts"]["ok"],
        },
        "RSS flat (paced phase within 10%)": {
            "value": rss_growth,
            "met": rss_growth is not None and rss_growth <= 10,
        },
    }


def markdown(results: dict[str, Any]) -> str:
    a, b, c = results["bare"], results["faust"], results["worker"]["throughput"]
    paced = results["worker"].get("paced")
    rss = results["worker"]["rss"]
    engines = results["detect_vs_eql"]
    ratios = results["ratios"]
    lines = [
        f"Run {results['started']} at commit {results['commit']}, `{results['command']}`",
        "",
        f"Workload: {results['workload']['events']:,} events, {results['produce']['avg_bytes']} B average, "
        f"{results['workload']['hosts']:,} hosts, {results['workload']['attacks']:,} attack sequences, "
        f"{results['workload']['java_connections']:,} benign Java connections, "
        f"{results['workload']['java_share']:.0%} of events involve Java; "
        f"{results['partitions']} partitions per topic.",
        "",
        "| measure | events/s (from first batch) | events/s (incl. start-up) | wall s |",
        "|---|---:|---:|---:|",
        f"| (a) bare aiokafka getmany + orjson | {_n(a['steady_events_per_s'])} | {_n(a['events_per_s'])} "
        f"| {_n(a['wall_s'])} |",
        f"| (b) Faust agent, iterate only | {_n(b['steady_events_per_s'])} | {_n(b['events_per_s'])} "
        f"| {_n(b['wall_s'])} |",
        f"| (c) shellwatch worker, to the last alert | {_n(c['steady_events_per_s'])} | {_n(c['events_per_s'])} "
        f"| {_n(c['wall_s'])} |",
        "",
        f"Worker start-up (process start to its first committed offset): {c.get('startup_s')} s, apart from the "
        "first-batch rates above.",
        "",
        f"Worker CPU from its first commit to its last alert: {_n(c.get('steady_events_per_cpu_s'))} events per "
        "CPU-second (all its threads; less sensitive than the wall-clock rates to other load on the machine).",
        "",
        f"Ratios (first-batch rates): **c/a = {ratios['c/a']}**, c/b = {ratios['c/b']} "
        f"(incl. start-up: c/a = {ratios['c/a incl. start-up']}, c/b = {ratios['c/b incl. start-up']}). "
        f"Worker alerts: {c['alerts']['received_distinct']}/{c['alerts']['expected']} expected "
        f"({c['alerts']['expected_by_rule']}), {c['alerts']['unexpected']} unexpected, "
        f"{c['alerts']['duplicates']} duplicates.",
        "",
        f"Worker's last periodic stats line: `{results['worker'].get('last_stats_log')}`",
        "",
    ]
    if paced is not None:
        latency = paced["sequence_alert_latency_ms"]
        load = paced["load"]
        lines += [
            f"Paced: {load['events']:,} events at {load['achieved_rate_per_s']:,}/s for {load['seconds']} s; "
            f"alerts {paced['alerts']['received_distinct']}/{paced['alerts']['expected']}.",
            "",
            "| sequence-alert latency (exec produced -> alert record) | ms |",
            "|---|---:|",
            f"| p50 | {latency['p50']} |",
            f"| p99 | {latency['p99']} |",
            f"| max | {latency['max']} |",
            "",
        ]
    ramp = results["worker"].get("ramp")
    if ramp is not None:
        pinned = (
            f"the worker pinned to CPU {ramp['cpus']} (taskset)" if ramp["cpus"] is not None else "the worker unpinned"
        )
        lines += [
            f"Ramp, {pinned}: sustainable rate **{_n(ramp['sustained_rate_per_s'])}/s** (the highest step whose "
            f"sequence-alert p99 stayed within {ramp['p99_limit_ms']} ms with every alert).",
            "",
            "| rate/s | achieved/s | p99 ms | every alert | held |",
            "|---:|---:|---:|---|---|",
            *(
                f"| {step['rate_per_s']:,} | {step['achieved_rate_per_s']:,} | {step['p99_ms']} "
                f"| {step['alerts_ok']} | {step['held']} |"
                for step in ramp["steps"]
            ),
            "",
        ]
    lines += [
        "| worker RSS | MiB |",
        "|---|---:|",
        f"| start (first commit) | {rss['start_mib']} |",
        f"| mid | {rss['mid_mib']} |",
        f"| end | {rss['end_mib']} |",
        f"| max | {rss['max_mib']} |",
    ]
    if "paced_growth_pct" in rss:
        lines.append(
            f"| paced phase: first / max / last (growth) | {rss['paced_first_mib']} / {rss['paced_max_mib']} / "
            f"{rss['paced_last_mib']} ({rss['paced_growth_pct']}%) |"
        )
    lines += ["", *_state_lines(results["worker"].get("state"))]
    if engines is not None:
        lines += _engine_lines(engines)
    stage1 = results.get("stage1_candidates")
    if stage1:
        lines += [
            "Stage 1 candidates (read every input record, run the bundled pre-filter on its bytes, nothing else):",
            "",
            "| client | events/s (from first batch) | events per CPU-s | kept |",
            "|---|---:|---:|---:|",
            *(
                f"| {name} | {_n(r['steady_events_per_s'])} | {_n(r['steady_events_per_cpu_s'])} | {r['kept']:,} |"
                for name, r in stage1.items()
            ),
            "",
        ]
    if results.get("rule_costs"):
        lines += [*rule_costs_markdown(results["rule_costs"]), ""]
    lines += [
        "| target | value | met |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {t['value']} | {'yes' if t['met'] else '**no**'} |" for name, t in results["targets"].items()
    ]
    return "\n".join(lines) + "\n"


def _state_lines(state: dict[str, Any] | None) -> list[str]:
    """The worker's state and forced evictions (its /metrics) after the throughput phase and at the end."""
    if state is None:
        return []
    lines = [
        f"Worker state (its /metrics), cap SHELLWATCH_MAX_HOSTS = {state['max_hosts']:,}:",
        "",
        "| when | hosts held | pending connections | held events | evicted: host / connection / held | rule keys "
        "evicted |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for when, label in (("after_throughput", "after the throughput phase"), ("at_end", "at the end")):
        seen = state.get(when)
        if seen is None:
            lines.append(f"| {label} | no answer | | | | |")
            continue
        evicted = seen["evictions"]
        lines.append(
            f"| {label} | {_n(seen.get('hosts'))} | {_n(seen.get('pending_connections'))} "
            f"| {_n(seen.get('held_events'))} | {evicted.get('host', 0):,} / {evicted.get('connection', 0):,} / "
            f"{evicted.get('held', 0):,} | {seen['rule_evictions']:,} |"
        )
    return [*lines, ""]


def _engine_lines(engines: dict[str, Any]) -> list[str]:
    return [
        "| same NDJSON file | events/CPU-s | CPU s | events/s (wall) | wall s |",
        "|---|---:|---:|---:|---:|",
        f"| `shellwatch detect` (the command, start-up included) | {engines['detect_events_per_cpu_s']:,} "
        f"| {engines['detect_cpu_s']} | {engines['detect_events_per_s']:,} | {engines['detect_s']} |",
        f"| Elastic `eql` 1.0.1 PythonEngine (orjson-decoded lines) | {engines['eql_events_per_cpu_s']:,} "
        f"| {engines['eql_cpu_s']} | {engines['eql_events_per_s']:,} | {engines['eql_s']} |",
        "",
        f"detect / eql = **{engines['speedup']}x** by CPU time ({engines['speedup_wall']}x by wall time); "
        f"sequence alerts detect {engines['sequence_alerts']['detect']}, "
        f"eql {engines['sequence_alerts']['eql']}, expected {engines['sequence_alerts']['expected']}: "
        f"same = {engines['same_alerts']}.",
        "",
    ]


def write(results: dict[str, Any], directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def _n(value: float | None) -> str:
    """A figure for the tables; a skipped phase (``--skip``) has none."""
    if value is None:
        return "skipped"
    return f"{value:,}"

"""One-off coverage run of the EQL compiler over Elastic's detection-rules repository (not part of CI).

    python -m bench.eql_coverage GIT_DIR [--commit REV] [--refused]

``GIT_DIR`` is a clone (bare or not) of github.com/elastic/detection-rules. Every ``*.toml`` under ``rules/``
and ``rules_building_block/`` outside ``_deprecated`` with ``language = "eql"`` is an active EQL rule; those
whose query is a ``sequence`` and whose path or ``OS:`` tags say Linux or macOS are the Linux/macOS sequences.
Prints loaded / refused counts for both sets, refusals grouped by construct, and the commit.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass

from shellwatch.rules.eql_rule import EqlRule, RuleProblem, parse_eql_rule

ROOTS = ("rules/", "rules_building_block/")
UNIX_TAGS = frozenset({"OS: Linux", "OS: macOS"})


@dataclass
class Tally:
    total: int = 0
    loaded: int = 0
    refused: Counter[str] | None = None

    def add(self, outcome: EqlRule | RuleProblem) -> None:
        self.total += 1
        if isinstance(outcome, EqlRule):
            self.loaded += 1
            return
        self.refused = self.refused or Counter()
        self.refused[outcome.construct or outcome.message.split(":")[0]] += 1

    def render(self, title: str) -> str:
        share = 100.0 * self.loaded / self.total if self.total else 0.0
        lines = [f"{title}: {self.loaded} / {self.total} loaded ({share:.1f} %), {self.total - self.loaded} refused"]
        lines += [f"  {count:4d}  {construct}" for construct, count in (self.refused or Counter()).most_common()]
        return "\n".join(lines)


def _git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], capture_output=True, text=True, check=True).stdout


def _is_unix_sequence(path: str, source: str, query: str) -> bool:
    if not query.lstrip().startswith("sequence"):
        return False
    tags = set(tomllib.loads(source).get("rule", {}).get("tags", []))
    return bool(tags & UNIX_TAGS) or path.startswith(("rules/linux/", "rules/macos/"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("git_dir")
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--refused", action="store_true", help="list every refused rule with its location")
    args = parser.parse_args(argv)
    commit = _git(args.git_dir, "rev-parse", args.commit).strip()
    paths = [
        p
        for p in _git(args.git_dir, "ls-tree", "-r", "--name-only", commit).splitlines()
        if p.startswith(ROOTS) and p.endswith(".toml") and "/_deprecated/" not in p
    ]
    everything, unix_sequences = Tally(), Tally()
    for path in paths:
        source = _git(args.git_dir, "show", f"{commit}:{path}")
        outcome = parse_eql_rule(source, path)
        if outcome is None:
            continue
        everything.add(outcome)
        query = str(tomllib.loads(source)["rule"].get("query", ""))
        if _is_unix_sequence(path, source, query):
            unix_sequences.add(outcome)
        if args.refused and isinstance(outcome, RuleProblem):
            print(outcome)
    print(f"elastic/detection-rules {commit}")
    print(everything.render("active EQL rules"))
    print(unix_sequences.render("Linux/macOS sequence rules"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

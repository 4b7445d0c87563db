"""A command pattern's programs match as ``fnmatchcase`` on each glob would (one compiled alternation)."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import given
from hypothesis import strategies as st

from shellwatch.match.shell_commands import Command
from shellwatch.rules.shell_idioms import CommandPattern
from shellwatch.rules.shell_rule import load_shell_rule

SHIPPED_GLOBS = sorted(
    {
        p
        for idiom in load_shell_rule().idioms
        for c in (idiom.command, idiom.pipe_from, idiom.pipe_to)
        if c is not None
        for p in c.programs
    }
)
_GLOB_CHARS = st.sampled_from(["a", "b", "h", "s", ".", "-", "*", "?", "[ab]", "[!a]", "]", "\\", "\n", "\u00e9"])
_NAME_CHARS = st.sampled_from(["a", "b", "h", "s", ".", "-", "[", "]", "\\", "\n", "\u00e9", "S"])


@given(
    st.lists(
        st.one_of(st.sampled_from(SHIPPED_GLOBS), st.lists(_GLOB_CHARS, min_size=1, max_size=5).map("".join)),
        min_size=1,
        max_size=4,
    ),
    st.one_of(
        st.sampled_from(["bash", "sh", "nc", "ncat", "python3", "busybox", "BASH"]),
        st.lists(_NAME_CHARS, max_size=6).map("".join),
    ),
)
def test_programs_match_as_fnmatchcase_does(globs: list[str], program: str) -> None:
    pattern = CommandPattern(programs=tuple(globs))
    expected = any(fnmatchcase(program, glob) for glob in globs)
    assert pattern.matches(Command(program, ())) == expected


def test_the_shipped_idioms_have_program_globs() -> None:
    assert len(SHIPPED_GLOBS) >= 10

"""The EQL grammar (lark, LALR) for Elasticsearch's dialect, wider than what ``parse`` accepts.

Why a grammar of our own rather than Elastic's ``eql`` package (1.0.1): its parse tree under
``elasticsearch_syntax`` erases distinctions whose semantics differ in Elasticsearch -- ``:``, ``like`` and
``like~`` all become ``wildcard()`` (case-insensitive vs case-sensitive), ``in~`` becomes ``==``,
``startsWith~`` becomes ``startsWith``, and ``?field`` loses its marker (it matters for join keys). It also
folds case globally (``eql.utils.CASE_INSENSITIVE``). Its test-suite role stays: it is the differential oracle.

The grammar also recognizes the constructs we refuse (``sample``, ``join``, ``until``, ``![...]`` missing
events, pipes, ``regex``, arithmetic), so ``parse`` can name them with their position instead of reporting a
bare syntax error. Keywords are lower case, as in Elasticsearch; function names are matched case-insensitively
by ``parse``. A string is ``"..."`` with backslash escapes or ``\"\"\"raw\"\"\"``; single quotes are recognized only to
be refused by name.
"""

from __future__ import annotations

import functools

from lark import Lark

__all__ = ["GRAMMAR", "parser"]

GRAMMAR = r'''
start: query pipe*

?query: sequence | sample | join | event_query

sequence: SEQUENCE seq_opt* stage_term+ until_term?
sample: SAMPLE seq_opt* stage_term+
join: JOIN seq_opt* stage_term+ until_term?
until_term: UNTIL stage_term
seq_opt: by_clause
       | WITH MAXSPAN "=" NUMBER NAME?          -> maxspan
stage_term: BANG? "[" event_query "]" term_opt*
term_opt: by_clause
        | WITH RUNS "=" NUMBER                  -> runs
by_clause: BY expr ("," expr)*
pipe: PIPE NAME pipe_arg*
pipe_arg: literal | field | ","

event_query: category WHERE expr
category: ANY | NAME | STRING

?expr: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr                         -> not_op
         | predicate
?predicate: value
          | value COMP_OP value                 -> compare
          | value NOT? IN "(" expr ("," expr)* ")"   -> in_op
          | value NOT? IN_I "(" expr ("," expr)* ")" -> in_op
          | value SEQ patterns                  -> wild
          | value LIKE patterns                 -> wild
          | value LIKE_I patterns               -> wild
          | value REGEX patterns                -> regex
          | value REGEX_I patterns              -> regex
patterns: literal | "(" literal ("," literal)* ")"
?value: product
      | value ADD_OP product                    -> arith
?product: atom
        | product MUL_OP atom                   -> arith
?atom: literal
     | field
     | call
     | "(" expr ")"
call: NAME TILDE? "(" [expr ("," expr)*] ")"
field: OPT? ident ("." ident)*
ident: NAME | BQ_NAME
literal: STRING | RAW_STRING | SQ_STRING | NUMBER | TRUE | FALSE | NULL

SEQUENCE: "sequence"
SAMPLE: "sample"
JOIN: "join"
UNTIL: "until"
WITH: "with"
MAXSPAN: "maxspan"
RUNS: "runs"
BY: "by"
WHERE: "where"
ANY: "any"
_AND: "and"
_OR: "or"
NOT: "not"
IN: "in"
IN_I.2: "in~"
LIKE: "like"
LIKE_I.2: "like~"
REGEX: "regex"
REGEX_I.2: "regex~"
TRUE: "true"
FALSE: "false"
NULL: "null"
SEQ: ":"
COMP_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "%"
TILDE: "~"
BANG: "!"
PIPE: "|"
OPT: "?"
NAME: /[A-Za-z_@][A-Za-z0-9_@]*/
BQ_NAME: /`(?:[^`]|``)+`/
NUMBER: /-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/
RAW_STRING.3: /"""(?:.|\n)*?"""/
STRING.2: /"(?:[^"\\]|\\.)*"/
SQ_STRING.2: /'(?:[^'\\]|\\.)*'/

COMMENT: /\/\/[^\n]*/
BLOCK_COMMENT: /\/\*(?:.|\n)*?\*\//
%ignore COMMENT
%ignore BLOCK_COMMENT
%ignore /\s+/
'''


@functools.cache
def parser() -> Lark:
    """The LALR parser (built once; building costs ~50 ms, parsing a rule well under 1 ms)."""
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False)

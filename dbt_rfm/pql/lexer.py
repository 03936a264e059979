"""Tokens of a PQL string, each with its position so errors can point at it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dbt_rfm.errors import RfmError

#: Words with a meaning in PQL (matched case-insensitively; identifiers keep their case).
KEYWORDS = frozenset(
    [
        "PREDICT",
        "FOR",
        "EACH",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "IS",
        "NULL",
        "LIKE",
        "RANK",
        "TOP",
        "TRUE",
        "FALSE",
        "INF",
        "ASSUMING",
    ]  # noqa: SIM905
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")+")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),.*\-])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is number, string, ident, keyword, op, punct or eof."""

    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        """The token text in upper case (for keyword comparisons)."""
        return self.text.upper()


def syntax_error(text: str, pos: int, message: str) -> RfmError:
    """An RfmError showing the query with a caret under character ``pos``."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start : None if line_end < 0 else line_end]
    caret = " " * (pos - line_start) + "^"
    return RfmError(f"PQL syntax error at position {pos}: {message}\n  {line}\n  {caret}")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``eof`` token.

    Raises:
        RfmError: a character that starts no token, with a caret under it.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise syntax_error(text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        value = m.group()
        if kind == "ident" and value.upper() in KEYWORDS:
            kind = "keyword"
        elif kind == "qident":
            kind, value = "ident", value[1:-1].replace('""', '"')
        if kind != "ws":
            tokens.append(Token(kind, value, pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens

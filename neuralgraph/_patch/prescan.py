"""Cheap checks on a patch file's bytes and text before the TOML parser sees it.

The parser's time and memory grow with nesting (100 000-deep dotted keys in a 200 KB file ran
for minutes and used over 10 GB; 2 000 levels of arrays ended in ``RecursionError``), and every
later stage walks what it returns. So a file over ``max_patch_bytes`` is refused before it is
read whole, and nesting deeper than :data:`MAX_NESTING` (brackets, braces, or the parts of one
dotted key or table header) before it is parsed, each with the file, line and column.
"""

from __future__ import annotations

import re
from typing import BinaryIO

import numpy as np

from neuralgraph._errors import PatchSyntaxError, Problem

#: Deepest nesting a patch may use; real patches use 5 (nodes.NAME.input = [ { from = ... } ]).
MAX_NESTING = 32
#: TOML strings and comments, whose brackets and dots are text, not structure.
_TEXT = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]++|\\.)*+"|\'[^\'\n]*+\'|#[^\n]*+')
#: Runs of the characters a dotted key is made of (strings already blanked): a run with more
#: than MAX_NESTING dots is a key nested too deep (values cannot chain dots: arrays need commas).
#: One pass, no backtracking, however the text is shaped.
_KEY_RUN = re.compile(r"[\w\-. \t]{%d,}+" % MAX_NESTING)


def read_limited(f: BinaryIO, limit: int, shown: str | None) -> bytes:
    """At most ``limit`` bytes of ``f``; a located NG101 when there are more (devices and pipes too)."""
    data = f.read(limit + 1)
    if len(data) > limit:
        raise PatchSyntaxError(
            [
                Problem(
                    "NG101",
                    f"the patch file is larger than the limit of {limit} bytes",
                    shown,
                    1,
                    1,
                    hint="raise it on purpose: max_patch_bytes in [limits] of config.toml, NEURALGRAPH_MAX_PATCH_BYTES, "
                    "or load_patch(..., max_patch_bytes=N)",
                )
            ]
        )
    return data


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def check_nesting(text: str, shown: str | None) -> None:
    """A located NG100 when brackets, braces or a dotted key nest deeper than :data:`MAX_NESTING`."""
    # strings and comments become same-length filler, so offsets still point into the original text
    bare = _TEXT.sub(lambda m: "0" * len(m[0]) if "\n" not in m[0] else re.sub(r"[^\n]", "0", m[0]), text)
    codes = np.frombuffer(bare.encode("utf-32-le"), dtype=np.uint32)
    step = np.zeros(len(codes), np.int32)
    step[(codes == ord("[")) | (codes == ord("{"))] = 1
    step[(codes == ord("]")) | (codes == ord("}"))] = -1
    depth = np.cumsum(step)
    where = None
    if len(depth) and depth.max() > MAX_NESTING:
        where = int(np.argmax(depth > MAX_NESTING))
        what = f"brackets nest more than {MAX_NESTING} deep"
    else:
        for m in _KEY_RUN.finditer(bare):
            if m[0].count(".") > MAX_NESTING:
                where = m.start() + len(m[0]) - len(m[0].lstrip())
                what = f"a dotted key has more than {MAX_NESTING} parts"
                break
    if where is not None:
        line, col = _position(text, where)
        raise PatchSyntaxError(
            [
                Problem(
                    "NG100",
                    f"{what}; the patch is not parsed",
                    shown,
                    line,
                    col,
                    hint=f"a patch nests 5 levels at most; the limit is {MAX_NESTING}",
                )
            ]
        )

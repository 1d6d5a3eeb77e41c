"""Line and column of every key and value in a TOML document.

``tomllib`` returns plain values with no positions; this scanner walks the same text and
records where each key path starts (``("nodes", "lpf", "cutoff")``), including keys inside
inline tables and items of arrays (``("nodes", "mix", "in", 1)``), so that every problem can
name its line. It assumes the text already parsed as TOML, so it can be lenient.
"""

from __future__ import annotations

import re
from collections.abc import Hashable

Key = tuple[Hashable, ...]
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\", "e": "\x1b"}
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|.)", re.DOTALL)


def _unescape(raw: str) -> str:
    """The text of a TOML basic string body: ``\\u00e9`` becomes ``é`` (unknown escapes stay as written)."""

    def one(m: re.Match[str]) -> str:
        code = m[1]
        if len(code) > 1:
            try:
                return chr(int(code[1:], 16))
            except (ValueError, OverflowError):
                return m[0]
        return _ESCAPES.get(code, m[0])

    return _ESCAPE.sub(one, raw)


Position = tuple[int, int]  # 1-based line, 1-based column


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found: dict[Key, Position] = {}
        # start offset of every line, to turn offsets into (line, col)
        self._line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._line_starts.append(i + 1)

    def where(self, offset: int) -> Position:
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self._line_starts[lo] + 1

    def record(self, key: Key, offset: int) -> None:
        self.found.setdefault(key, self.where(offset))

    # ---- lexical helpers --------------------------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def skip_ws(self, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.pos += 1
            elif ch == "#":
                while self.pos < len(text) and text[self.pos] != "\n":
                    self.pos += 1
            else:
                return

    def skip_line(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end + 1

    def string(self) -> str:
        text = self.text
        for quote in ('"""', "'''"):
            if text.startswith(quote, self.pos):
                end = text.find(quote, self.pos + 3)
                while end >= 0 and quote == '"""' and text[end - 1] == "\\":
                    end = text.find(quote, end + 1)
                end = len(text) if end < 0 else end + 3
                while end < len(text) and text[end] == quote[0]:
                    end += 1
                value = text[self.pos + 3 : end - 3]
                self.pos = end
                return value
        quote = text[self.pos]
        i = self.pos + 1
        out = []
        while i < len(text) and text[i] != quote and text[i] != "\n":
            if quote == '"' and text[i] == "\\" and i + 1 < len(text):
                out.append(text[i : i + 2])
                i += 2
                continue
            out.append(text[i])
            i += 1
        self.pos = min(i + 1, len(text))
        # a basic string's escapes name the same key as the decoded text tomllib returns
        return _unescape("".join(out)) if quote == '"' else "".join(out)

    def key(self) -> list[tuple[str, int]]:
        """A dotted key: its parts with their offsets."""
        parts = []
        while True:
            self.skip_ws(newlines=False)
            start = self.pos
            if self.peek() in ('"', "'"):
                parts.append((self.string(), start))
            else:
                i = self.pos
                while i < len(self.text) and (self.text[i].isalnum() or self.text[i] in "_-"):
                    i += 1
                parts.append((self.text[self.pos : i], start))
                self.pos = i
            self.skip_ws(newlines=False)
            if self.peek() == ".":
                self.pos += 1
                continue
            return parts

    # ---- values -----------------------------------------------------------------------------
    def value(self, key: Key) -> None:
        self.record(key, self.pos)
        ch = self.peek()
        if ch in ('"', "'"):
            self.string()
        elif ch == "[":
            self.pos += 1
            index = 0
            while True:
                self.skip_ws(newlines=True)
                if self.pos >= len(self.text) or self.peek() == "]":
                    self.pos += 1
                    return
                self.value(key + (index,))
                index += 1
                self.skip_ws(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
        elif ch == "{":
            self.pos += 1
            while True:
                self.skip_ws(newlines=True)
                if self.pos >= len(self.text) or self.peek() == "}":
                    self.pos += 1
                    return
                parts = self.key()
                sub = key + tuple(p for p, _ in parts)
                self.record(sub, parts[0][1])
                if self.peek() == "=":
                    self.pos += 1
                self.skip_ws(newlines=False)
                self.value(sub)
                self.skip_ws(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
        else:
            text = self.text
            while self.pos < len(text) and text[self.pos] not in ",]}\n#":
                self.pos += 1

    # ---- document ---------------------------------------------------------------------------
    def document(self) -> dict[Key, Position]:
        table: Key = ()
        array_counts: dict[Key, int] = {}
        while True:
            self.skip_ws(newlines=True)
            if self.pos >= len(self.text):
                return self.found
            if self.peek() == "[":
                double = self.peek(2) == "[["
                self.pos += 2 if double else 1
                parts = self.key()
                table = tuple(p for p, _ in parts)
                if double:
                    index = array_counts.get(table, 0)
                    array_counts[table] = index + 1
                    table = table + (index,)
                self.record(table, parts[0][1])
                self.skip_line()
                continue
            parts = self.key()
            full = table + tuple(p for p, _ in parts)
            if self.peek() != "=":
                self.skip_line()
                continue
            self.record(full, parts[0][1])
            self.pos += 1
            self.skip_ws(newlines=False)
            self.value(full + ("=",))


def locate(text: str) -> dict[Key, Position]:
    """Map key paths to the position of the key; ``path + ("=",)`` to the position of its value.

    Keys inside a value (inline tables, array items) hang below ``path + ("=",)``.
    """
    try:
        return _Scanner(text).document()
    except (IndexError, ValueError):  # never let position finding hide the real error
        return {}

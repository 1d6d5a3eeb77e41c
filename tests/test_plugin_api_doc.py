"""docs/plugin-api.md shows the onepole example's files as they are, and documents every
argument of the declarations it describes."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import attrs

from neuralgraph.plugin import Input, Output, Param, PrepareContext

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "plugin-api.md").read_text(encoding="utf-8")


def test_the_page_shows_the_example_files_verbatim():
    blocks = re.findall(r"```(?:toml|python)\n(.*?)```", DOC, re.S)
    example = ROOT / "examples" / "onepole"
    for name in (
        "pyproject.toml",
        "ng_onepole/__init__.py",
        "lowpassed_saw.toml",
        "tests/test_lowpass.py",
        "tests/test_lowpass_contract.py",
    ):
        assert (example / name).read_text(encoding="utf-8") in blocks, f"docs/plugin-api.md does not show {name}"


def test_every_declaration_argument_and_default_is_documented():
    for cls in (Input, Output, Param):
        for field in attrs.fields(cls):
            if field.name == "name":  # filled in from the attribute name
                continue
            row = re.search(rf"^\| [^|]*`{field.name}`[^|]*\| [^|]+ \|", DOC, re.M)
            assert row, f"{cls.__name__}.{field.name} is not in the reference"
        signature = re.search(rf"`{cls.__name__}\((.*?)\)`", DOC).group(1)
        for field in attrs.fields(cls):
            if field.name != "name" and field.default is not attrs.NOTHING:
                default = field.default
                if isinstance(default, type):
                    shown = default.__name__
                elif hasattr(default, "name"):  # a Rate
                    shown = f"Rate.{default.name}"
                else:
                    shown = repr(default).replace("'", '"')
                assert f"{field.name}={shown}" in signature, (cls.__name__, field.name, shown, signature)
    for field in attrs.fields(PrepareContext):
        assert re.search(rf"^\| [^|]*`{field.name}`", DOC, re.M), f"PrepareContext.{field.name} is not in the reference"
    assert "zeros(*shape" in DOC and inspect.signature(PrepareContext.zeros)


def test_the_page_is_in_the_site_navigation():
    assert "plugin-api.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")

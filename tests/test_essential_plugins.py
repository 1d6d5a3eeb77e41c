"""The essential plugins (audio output/input, the core mappers) cannot be switched off, and a
setting that tries is answered with a clear message naming the plugin and the setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

import neuralgraph as ng


def _loaded(registry: ng.Registry) -> set[str]:
    return {t.plugin for t in registry.node_types.values()}


def test_the_block_list_from_the_environment_cannot_drop_the_output(monkeypatch):
    monkeypatch.setenv("NEURALGRAPH_DISABLE_PLUGINS", "io,noise")
    with pytest.warns(ng.PluginWarning) as caught:
        registry = ng.Registry.load()
    assert "io.output" in registry.node_types and "io.input" in registry.node_types
    assert "noise.white" not in registry.node_types  # the rest of the list is followed
    message = (
        "plugin 'io' cannot be disabled: it provides io.output and io.input, without which no patch "
        "can play; loaded although NEURALGRAPH_DISABLE_PLUGINS leaves it out"
    )
    assert registry.notices == [message]
    assert [str(w.message) for w in caught] == [message]


def test_an_allow_list_without_them_still_gets_them(monkeypatch):
    monkeypatch.setenv("NEURALGRAPH_PLUGINS", "oscillators")
    with pytest.warns(ng.PluginWarning):
        registry = ng.Registry.load()
    assert _loaded(registry) == {"oscillators", "io", "mappers"}
    assert registry.notices == [
        "plugin 'io' cannot be disabled: it provides io.output and io.input, without which no patch can play; "
        "loaded although NEURALGRAPH_PLUGINS (it is not listed) leaves it out",
        "plugin 'mappers' cannot be disabled: it provides the core control mappers (map.*); "
        "loaded although NEURALGRAPH_PLUGINS (it is not listed) leaves it out",
    ]
    # and the patch plays: an oscillator into the output, through a mapper
    patch = ng.load_patch(
        {
            "schema": 1,
            "nodes": {
                "lfo": {"type": "osc.sine", "freq": 3.0},
                "hz": {"type": "map.range", "in": "lfo", "out_lo": 200.0, "out_hi": 400.0},
                "osc": {"type": "osc.sine", "freq": "hz"},
                "out": {"type": "io.output", "in": "osc"},
            },
        },
        registry=registry,
    )
    audio = ng.Engine(patch, sample_rate=8000, block_size=64).render(seconds=0.1)
    assert audio.shape[1] == 800 and 0.9 < float(abs(audio).max()) <= 1.0


def test_arguments_are_named_when_they_ask(monkeypatch):
    monkeypatch.delenv("NEURALGRAPH_PLUGINS", raising=False)
    with pytest.warns(ng.PluginWarning):
        registry = ng.Registry.load(block={"mappers"})
    assert "map.range" in registry.node_types
    assert registry.notices == [
        "plugin 'mappers' cannot be disabled: it provides the core control mappers "
        "(map.*); loaded although the block list leaves it out"
    ]


def test_no_notice_when_nothing_essential_is_asked_for(monkeypatch, recwarn):
    monkeypatch.setenv("NEURALGRAPH_DISABLE_PLUGINS", "noise")
    registry = ng.Registry.load()
    assert registry.notices == [] and not [w for w in recwarn if issubclass(w.category, ng.PluginWarning)]


def test_the_command_line_says_so_in_one_line():
    env = {"NEURALGRAPH_DISABLE_PLUGINS": "io", "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "neuralgraph", "nodes"], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0
    assert run.stderr.strip() == (
        "neuralgraph: warning: plugin 'io' cannot be disabled: it provides io.output and io.input, without "
        "which no patch can play; loaded although NEURALGRAPH_DISABLE_PLUGINS leaves it out"
    )
    assert "io.output" in run.stdout

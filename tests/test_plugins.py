"""The plugin registry: entry points, conflicts, allow/block lists, broken plugins, hooks."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

import neuralgraph as ng
from neuralgraph.plugin import Node, Output, hookimpl


def plugin_module(name: str, *classes: type, backends: dict | None = None) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def ng_register_nodes(register):
        for cls in classes:
            register(cls)

    module.ng_register_nodes = ng_register_nodes
    if backends:

        @hookimpl
        def ng_register_backends(register):
            for key, factory in backends.items():
                register(key, factory)

        module.ng_register_backends = ng_register_backends
    return module


class Sine2(Node):
    """Another plugin's sine."""

    type_name = "osc.sine"
    out = Output()


def test_builtin_nodes_come_from_entry_points():
    registry = ng.Registry.load()
    for name in ("osc.sine", "osc.saw", "math.mul", "math.add", "mix", "io.output"):
        assert name in registry.node_types
    assert registry.node_types["io.output"].plugin == "io"
    assert "neuralgraph_plugins" in registry.node_class("osc.saw").__module__


def test_the_core_never_imports_a_concrete_node():
    code = (
        "import neuralgraph, neuralgraph._compile.compiler, neuralgraph._runtime.engine, neuralgraph._tools.cli, sys; "
        "print(any(m.startswith('neuralgraph_plugins') for m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_two_plugins_claiming_one_name_is_an_error_naming_both():
    with pytest.raises(ng.PluginError) as info:
        ng.Registry.load(plugins={"other": plugin_module("other", Sine2)})
    message = str(info.value)
    assert "'osc.sine'" in message and "'oscillators'" in message and "'other'" in message
    assert "NEURALGRAPH_DISABLE_PLUGINS" in message


def test_block_list_resolves_a_conflict():
    registry = ng.Registry.load(block={"oscillators"}, plugins={"other": plugin_module("other", Sine2)})
    assert registry.node_class("osc.sine") is Sine2


def test_allow_and_block_lists_from_the_environment(monkeypatch):
    monkeypatch.setenv("NEURALGRAPH_PLUGINS", "io,arithmetic")
    with pytest.warns(ng.PluginWarning):  # mappers is essential (tests/test_essential_plugins.py)
        loaded = {t.plugin for t in ng.Registry.load().node_types.values()}
    assert loaded == {"io", "arithmetic", "mappers"}
    monkeypatch.delenv("NEURALGRAPH_PLUGINS")
    monkeypatch.setenv("NEURALGRAPH_DISABLE_PLUGINS", "mixer")
    registry = ng.Registry.load()
    assert "mix" not in registry.node_types and "osc.sine" in registry.node_types


def test_a_plugin_whose_hook_fails_is_skipped_and_reported():
    module = types.ModuleType("broken")

    @hookimpl
    def ng_register_nodes(register):
        raise RuntimeError("cannot find my data file")

    module.ng_register_nodes = ng_register_nodes
    registry = ng.Registry.load(plugins={"broken": module})
    assert "osc.sine" in registry.node_types  # the others still load
    (failure,) = registry.failures
    assert failure.plugin == "broken" and "cannot find my data file" in failure.error


def test_a_plugin_that_fails_to_import_is_skipped(tmp_path):
    # a real installed distribution whose entry point module raises on import
    site = tmp_path / "site"
    (site / "badplug").mkdir(parents=True)
    (site / "badplug" / "__init__.py").write_text("raise ImportError('needs libfoo')\n")
    dist = site / "badplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: badplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[neuralgraph]\nbadplug = badplug\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    run = subprocess.run([sys.executable, "-m", "neuralgraph", "nodes"], capture_output=True, text=True, env=env)
    assert run.returncode == 0
    assert "plugin 'badplug' skipped" in run.stderr and "needs libfoo" in run.stderr
    assert "osc.sine" in run.stdout


def test_bad_registrations_are_refused():
    class NoName(Node):
        out = Output()

    class Needs(Node):
        type_name = "x.needs"
        out = Output()

        def __init__(self, required, **kw):
            super().__init__(**kw)

    registry = ng.Registry()
    with pytest.raises(ng.PluginError, match="snake_case"):
        registry.register_node(NoName)
    with pytest.raises(ng.PluginError, match="not constructible with its default parameters"):
        registry.register_node(Needs)
    with pytest.raises(ng.PluginError, match="not a neuralgraph Node"):
        registry.register_node(dict)  # type: ignore[arg-type]


def test_reserved_port_names_are_refused():
    from neuralgraph.plugin import Input

    with pytest.raises(TypeError, match="cannot be called `reset`"):
        type("Bad", (Node,), {"type_name": "x.bad", "reset": Input(), "out": Output()})


def test_backends_hook_registers_factories():
    registry = ng.Registry.load(plugins={"fake": plugin_module("fake", backends={"nullsink": dict})})
    assert registry.backend("nullsink") is dict and registry.backends["nullsink"].plugin == "fake"


def test_third_party_example_plugin_is_installed_and_renders(tmp_path):
    run = subprocess.run([sys.executable, "-m", "neuralgraph", "nodes"], capture_output=True, text=True, check=True)
    assert "fx.bitcrush" in run.stdout and "[bitcrush]" in run.stdout
    patch = ng.load_patch(
        {
            "schema": 1,
            "nodes": {
                "osc": {"type": "osc.sine", "freq": 440.0},
                "crush": {"type": "fx.bitcrush", "in": "osc", "bits": 2},
                "out": {"type": "io.output", "channels": 1, "in": "crush"},
            },
        }
    )
    audio = ng.Engine(patch, sample_rate=48000, block_size=64).render(0.1)
    assert set(audio.ravel().tolist()) <= {-1.0, -0.5, 0.0, 0.5, 1.0}

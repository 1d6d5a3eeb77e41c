"""The ``jack`` audio backend (JACK-Client): named ports, auto-connection, JACK MIDI input.

JACK-Client is imported in ``start()`` only, so neuralgraph renders offline without libjack.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from typing import Any

from neuralgraph.plugin import BackendError, CallbackAdapter, RealtimeGuard, Status, hookimpl, warm_up

INSTALL_HINT = (
    "the jack backend needs libjack and JACK-Client: apt-get install libjack-jackd2-0 "
    "(jackd2 for the server) and pip install JACK-Client"
)


def import_jack() -> Any:
    """The ``jack`` module, or a BackendError saying what to install."""
    try:
        import jack
    except (ImportError, OSError) as exc:
        raise BackendError(f"{INSTALL_HINT} ({exc})") from None
    return jack


class JackBackend:
    """Plays an engine as a JACK client.

    Ports: ``out_1`` … ``out_N`` (one per output channel), ``in_1`` … for a patch with io.input,
    and ``midi_in``. Options:

    - ``client_name`` ("neuralgraph"), ``server`` (JACK server name; default: $JACK_DEFAULT_SERVER);
    - ``connect`` (True): connect outputs to the physical playback ports and inputs to the
      physical capture ports; ``connect_to``: explicit destination ports instead;
    - ``midi_in``: a JACK MIDI output port (name or glob, e.g. ``"a2j:*"``) to connect to ``midi_in``.

    The server's sample rate wins: the engine is rebuilt at it when it differs. When the server's
    buffer size changes, a control thread rebuilds the engine for the new period (settings made
    with ``engine.set`` carry over) and the process callback swaps it in at a period boundary;
    until then a period that is a multiple of the old block runs several blocks, another plays
    silence. Read :attr:`engine` for the engine currently playing.
    """

    name = "jack"

    def __init__(
        self,
        engine: Any,
        *,
        client_name: str = "neuralgraph",
        server: str | None = None,
        connect: bool = True,
        connect_to: list[str] | None = None,
        midi_in: str | None = None,
        device: str | None = None,
        switch_interval: float | None = None,
        **_: Any,
    ) -> None:
        self._engine0 = engine
        self.client_name = client_name
        self.server = server or device or None
        self.connect = connect
        self.connect_to = list(connect_to or [])
        self.midi_in = midi_in
        self.guard = RealtimeGuard() if switch_interval is None else RealtimeGuard(switch_interval)
        self.adapter: CallbackAdapter | None = None
        self.client: Any = None
        self._outs: list[Any] = []
        self._out_names: list[str] = []
        self._ins: list[Any] = []
        self._midi: Any = None
        self._xruns = 0
        self._last_xrun = 0.0
        self._message = ""
        self._wake = threading.Event()
        self._want_block = 0
        self._follower: threading.Thread | None = None
        self._running = False

    @property
    def engine(self) -> Any:
        """The engine playing now (a new one after a sample-rate or buffer-size change)."""
        return self.adapter.engine if self.adapter is not None else self._engine0

    # ---- callbacks (JACK threads) ---------------------------------------------------------------
    def _process(self, frames: int) -> None:
        adapter = self.adapter
        midi = self._midi
        if midi is not None:
            try:
                for offset, data in midi.incoming_midi_events():
                    size = len(data)
                    if 2 <= size <= 3:
                        raw = memoryview(data)  # cffi buffer -> ints without copying the bytes
                        adapter.push_midi(offset, raw[0], raw[1], raw[2] if size == 3 else 0)
            except BaseException as exc:  # a bad event must not cost the audio
                adapter.faults += 1
                adapter.last_error = exc
        try:
            outs = [port.get_array() for port in self._outs]
            ins = [port.get_array() for port in self._ins] if self._ins else None
        except BaseException as exc:  # no buffers to fill: nothing can be played this period
            adapter.faults += 1
            adapter.last_error = exc
            return
        adapter.process_planar(outs, frames, ins)

    def _on_xrun(self, delayed_usecs: float) -> None:
        # jack2 reports one xrun per late client plus the driver's: count incidents 1 ms apart
        now = time.monotonic()
        if now - self._last_xrun > 0.001:
            self._xruns += 1
        self._last_xrun = now

    def _on_blocksize(self, blocksize: int) -> None:
        self._want_block = int(blocksize)
        self._wake.set()

    def _on_shutdown(self, status: Any, reason: str) -> None:
        self._message = f"JACK server shut down: {reason}"
        self._running = False
        self._wake.set()

    def _follow(self) -> None:
        """Control thread: build engines for new buffer sizes; release swapped-out ones."""
        while self._running:
            self._wake.wait(0.1)
            self._wake.clear()
            adapter = self.adapter
            if adapter is None:
                break
            adapter.tend()
            want = self._want_block
            if want and self._running:
                self._want_block = 0
                try:
                    adapter.request_block_size(want)
                except Exception as exc:  # a bad size for this patch: keep playing silence, report it
                    self._message = f"cannot rebuild for {want} frames: {exc}"

    # ---- control thread ---------------------------------------------------------------------------
    def start(self) -> None:
        """Open a client, register and connect ports, and activate it."""
        if self._running:
            return
        jack = import_jack()
        jack.set_error_function(lambda message: None)  # libjack's own lines; the failure is reported below
        try:
            client = jack.Client(self.client_name, no_start_server=True, servername=self.server)
        except jack.JackOpenError as exc:
            raise BackendError(
                f"cannot connect to a JACK server{' named ' + repr(self.server) if self.server else ''}: {exc}; "
                "is jackd running? (e.g. jackd -d dummy -r 48000 -p 256, or .ci/start-audio-servers.sh)"
            ) from None
        self.client = client  # from here on stop() closes it, whatever fails next
        try:
            engine = self._engine0
            if client.samplerate != engine.sample_rate or client.blocksize != engine.block_size:
                engine = engine.rebuilt(sample_rate=client.samplerate, block_size=client.blocksize)
            self.adapter = CallbackAdapter(warm_up(engine))
            self._outs = [client.outports.register(f"out_{i + 1}") for i in range(engine.channels)]
            self._out_names = [port.name for port in self._outs]
            if engine.input is not None:
                self._ins = [client.inports.register(f"in_{i + 1}") for i in range(engine.input.shape[0])]
            self._midi = client.midi_inports.register("midi_in")
            client.set_process_callback(self._process)
            client.set_xrun_callback(self._on_xrun)
            client.set_blocksize_callback(self._on_blocksize)
            client.set_shutdown_callback(self._on_shutdown)
            self.guard.enter()
            self._running = True
            client.activate()
            self._connect(client, jack)
        except BackendError:
            self.stop()
            raise
        except jack.JackError as exc:
            self.stop()
            raise BackendError(f"JACK: {exc}") from None
        self._follower = threading.Thread(target=self._follow, name="neuralgraph-jack-follow", daemon=True)
        self._follower.start()

    def _connect(self, client: Any, jack: Any) -> None:
        if self.connect_to:
            for port, dest in zip(self._outs, self.connect_to):
                client.connect(port, dest)
        elif self.connect:
            playback = client.get_ports(is_physical=True, is_input=True, is_audio=True)
            if playback:
                if len(self._outs) == 1:
                    for dest in playback[:2]:
                        client.connect(self._outs[0], dest)
                else:
                    for port, dest in zip(self._outs, playback):
                        client.connect(port, dest)
            capture = client.get_ports(is_physical=True, is_output=True, is_audio=True)
            for src, port in zip(capture, self._ins):
                client.connect(src, port)
        if self.midi_in:
            sources = [
                p
                for p in client.get_ports(is_midi=True, is_output=True)
                if p.name == self.midi_in or fnmatch.fnmatchcase(p.name, self.midi_in)
            ]
            if not sources:
                have = ", ".join(p.name for p in client.get_ports(is_midi=True, is_output=True)) or "none"
                raise BackendError(f"no JACK MIDI output port {self.midi_in!r} (available: {have})")
            for src in sources:
                client.connect(src, self._midi)

    def stop(self) -> None:
        """Silence the callback, wait a few periods, deactivate and close the client."""
        adapter, client = self.adapter, self.client
        was_running = self._running
        self._running = False
        self._wake.set()
        if adapter is not None:
            adapter.stopping = True
        if client is not None:
            if was_running and adapter is not None:
                # let in-flight callbacks see the stop flag before jack2 cancels the client thread
                # (cancelling it while it waits for the GIL can deadlock the interpreter)
                time.sleep(3 * adapter.period / adapter.engine.sample_rate + 0.01)
            try:
                client.deactivate()
            except Exception:  # already gone with the server
                pass
            try:
                client.close()
            except Exception:
                pass
            self.client = None
        if self._follower is not None:
            self._follower.join(timeout=1.0)
            self._follower = None
        self.guard.exit()

    def status(self) -> Status:
        """Load, xruns (server-reported, clustered), voices, and the port names."""
        adapter = self.adapter
        if adapter is None:
            adapter = CallbackAdapter(self._engine0)
        name = self.client.name if self.client is not None else self.client_name
        return adapter.status(
            backend=self.name, running=self._running, device=name, message=self._message, xruns=self._xruns
        )

    def port_names(self) -> list[str]:
        """Full names of the output ports (``neuralgraph:out_1`` …)."""
        return list(self._out_names)


@hookimpl
def ng_register_backends(register) -> None:
    register("jack", JackBackend)

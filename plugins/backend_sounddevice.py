"""The ``sounddevice`` audio backend (PortAudio): any device PortAudio sees, including JACK's.

sounddevice is imported in ``start()`` only, so neuralgraph renders offline without PortAudio.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from neuralgraph.plugin import BackendError, CallbackAdapter, RealtimeGuard, Status, hookimpl, warm_up

INSTALL_HINT = (
    "the sounddevice backend needs the PortAudio library and sounddevice: "
    "apt-get install libportaudio2 and pip install sounddevice"
)


def import_sounddevice() -> Any:
    """The ``sounddevice`` module, or a BackendError saying what to install."""
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise BackendError(f"{INSTALL_HINT} ({exc})") from None
    return sounddevice


def _device_list(sd: Any, kind: str) -> str:
    key = "max_output_channels" if kind == "output" else "max_input_channels"
    names = [
        f"{i}: {d['name']} ({sd.query_hostapis(d['hostapi'])['name']})"
        for i, d in enumerate(sd.query_devices())
        if d[key] > 0
    ]
    return "; ".join(names) or "none"


class SoundDeviceBackend:
    """Plays an engine through a PortAudio stream.

    Options: ``device`` (a number or a substring of the name, e.g. ``"system, JACK"``; default:
    PortAudio's default output), ``blocksize`` (default: the engine's block size, so every callback
    is exactly one engine block), ``latency`` ("low", "high" or seconds), ``midi_in`` (a MIDI input
    port opened with mido; needs python-rtmidi). A patch with io.input opens a duplex stream.
    """

    name = "sounddevice"

    def __init__(
        self,
        engine: Any,
        *,
        device: str | int | None = None,
        blocksize: int | None = None,
        latency: str | float = "low",
        midi_in: str | None = None,
        switch_interval: float | None = None,
        **_: Any,
    ) -> None:
        self.engine = engine
        self.device = int(device) if isinstance(device, str) and device.isdigit() else device
        self.blocksize = int(blocksize or engine.block_size)
        self.latency = latency
        self.midi_in = midi_in
        self.guard = RealtimeGuard() if switch_interval is None else RealtimeGuard(switch_interval)
        self.adapter = CallbackAdapter(engine)
        self.stream: Any = None
        self._midi_port: Any = None
        self._device_name = str(device) if device is not None else "default"
        self._running = False
        self._tender: threading.Thread | None = None

    def _callback_out(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.adapter.xruns += 1
        self.adapter.process_interleaved(outdata, frames)

    def _callback_duplex(self, indata: Any, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.adapter.xruns += 1
        self.adapter.process_interleaved(outdata, frames, indata)

    def start(self) -> None:
        """Open and start the stream (and the MIDI input, if asked)."""
        if self._running:
            return
        sd = import_sounddevice()
        engine = self.engine
        try:
            out_info = sd.query_devices(self.device, "output")
        except (ValueError, sd.PortAudioError) as exc:  # PortAudioError: no default device, or a bad number
            which = "no default output device" if self.device is None else f"no output device {self.device!r}"
            raise BackendError(
                f"sounddevice: {which} ({exc}); output devices: {_device_list(sd, 'output')}; "
                "pick one with --device N, or use --backend jack"
            ) from None
        self._device_name = f"{out_info['name']} ({sd.query_hostapis(out_info['hostapi'])['name']})"
        out_channels = min(engine.channels, int(out_info["max_output_channels"])) or engine.channels
        if out_channels < engine.channels and out_channels == 0:
            raise BackendError(f"sounddevice: {out_info['name']!r} has no output channels")
        try:
            if engine.input is not None:
                in_info = sd.query_devices(self.device, "input")
                in_channels = min(engine.input.shape[0], int(in_info["max_input_channels"]))
                if in_channels < 1:
                    raise BackendError(f"sounddevice: the patch has io.input but {in_info['name']!r} has no inputs")
                self.stream = sd.Stream(
                    samplerate=engine.sample_rate,
                    blocksize=self.blocksize,
                    device=self.device,
                    channels=(in_channels, out_channels),
                    dtype="float32",
                    latency=self.latency,
                    callback=self._callback_duplex,
                )
            else:
                self.stream = sd.OutputStream(
                    samplerate=engine.sample_rate,
                    blocksize=self.blocksize,
                    device=self.device,
                    channels=out_channels,
                    dtype="float32",
                    latency=self.latency,
                    callback=self._callback_out,
                )
        except sd.PortAudioError as exc:
            raise BackendError(
                f"sounddevice: cannot open {self._device_name} at {engine.sample_rate} Hz, "
                f"block {self.blocksize}: {exc}"
            ) from None
        if self.midi_in:
            self._open_midi()
        warm_up(engine)
        self.guard.enter()
        self._running = True
        self.stream.start()
        self._tender = threading.Thread(target=self._tend, name="neuralgraph-sounddevice-tend", daemon=True)
        self._tender.start()

    def _tend(self) -> None:
        """Control thread: pin PortAudio's audio thread once it has called back (as the JACK
        backend does, so that live edits run beside it, below it), drop swapped-out engines."""
        while self._running:
            self.adapter.tend()
            time.sleep(0.1)

    def _open_midi(self) -> None:
        try:
            import mido

            names = mido.get_input_names()
        except Exception as exc:  # mido needs a MIDI backend library (python-rtmidi) for live ports
            raise BackendError(
                f"live MIDI input with the sounddevice backend needs python-rtmidi "
                f"(pip install python-rtmidi), or use --backend jack: {exc}"
            ) from None
        matches = [n for n in names if self.midi_in in n]
        if not matches:
            raise BackendError(
                f"no MIDI input port matching {self.midi_in!r} (available: {', '.join(names) or 'none'})"
            )
        engine = self.engine

        def on_message(msg: Any) -> None:  # mido's thread, not the audio thread: use the ring
            raw = msg.bytes()
            if 2 <= len(raw) <= 3 and raw[0] < 0xF0:
                engine.send_midi(raw[0], raw[1], raw[2] if len(raw) == 3 else 0)

        self._midi_port = mido.open_input(matches[0], callback=on_message)

    def stop(self) -> None:
        """Silence the callback, then stop and close the stream."""
        was_running = self._running
        self._running = False
        self.adapter.stopping = True
        if self._midi_port is not None:
            self._midi_port.close()
            self._midi_port = None
        if self.stream is not None:
            if was_running:
                time.sleep(2 * self.blocksize / self.engine.sample_rate + 0.01)
            try:
                self.stream.stop()
                self.stream.close()
            except Exception:  # the device went away already
                pass
            self.stream = None
        if self._tender is not None:
            self._tender.join(timeout=1.0)
            self._tender = None
        self.guard.exit()

    def status(self) -> Status:
        """Load, underflows, voices and the device name."""
        return self.adapter.status(backend=self.name, running=self._running, device=self._device_name)


@hookimpl
def ng_register_backends(register) -> None:
    register("sounddevice", SoundDeviceBackend)

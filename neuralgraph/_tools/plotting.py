"""Pictures of a render: the waveform above, the spectrogram below (``render --plot out.png``).

Needs matplotlib, the optional ``plot`` extra (``pip install 'neuralgraph[plot]'``); without it
:func:`plot_render` raises a :class:`~neuralgraph._errors.NeuralgraphError` saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuralgraph._errors import NeuralgraphError

INSTALL_HINT = "pip install 'neuralgraph[plot]' (or: pip install matplotlib)"
#: The spectrogram's floor: quieter bins are drawn as this, so the noise floor of a float render
#: (around -300 dB) does not squash the colour scale.
FLOOR_DB = -100.0


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend; raises NeuralgraphError naming the install when missing."""
    try:
        import matplotlib
    except ImportError:
        raise NeuralgraphError(f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    matplotlib.use("Agg")  # files only: never open a window or need a display
    import matplotlib.pyplot as plt

    return plt


def check_plot_format(output: str | Path) -> None:
    """Fail before rendering when the picture could not be drawn: no matplotlib, or a suffix that
    is not a picture format (UsageError, or NeuralgraphError for the install). The folder is
    checked by the caller (``render_file.check_writable``)."""
    from neuralgraph._errors import UsageError

    plt = pyplot()
    path = Path(output)
    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise UsageError(
            f"--plot {output}: {'no suffix' if not suffix else f'.{suffix} is not a picture format'}; "
            f"formats that work: {', '.join('.' + f for f in sorted(formats))}"
        )


def title_for(name: str, settings: Sequence[str]) -> str:
    """``name`` and the render settings as one title: ``Saw chord — saw_chord.toml · 48000 Hz · block 128``."""
    return " · ".join([name, *settings]) if settings else name


def plot_render(
    audio: np.ndarray, sample_rate: int, output: str | Path, title: str, *, max_hz: float | None = None
) -> Path:
    """Write a PNG (or any format matplotlib knows by suffix) of ``audio`` (channels, frames).

    Top: every channel's waveform against time. Bottom: the spectrogram of the channels' mean,
    in dB relative to full scale, up to ``max_hz`` (default: Nyquist).
    """
    plt = pyplot()
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    channels, frames = audio.shape
    seconds = frames / sample_rate
    fig, (wave_ax, spec_ax) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [1, 2]}, constrained_layout=True
    )
    fig.suptitle(title, fontsize=11)
    t = np.arange(frames) / sample_rate
    # Many samples per pixel: draw each channel's min/max envelope per pixel column, as DAWs do,
    # so a long render stays readable and quick to draw.
    columns = 2000
    # A mono signal copied to every channel is drawn once, not as overlapping copies.
    identical = channels > 1 and all(np.array_equal(audio[0], audio[c]) for c in range(1, channels))
    drawn = 1 if identical else channels
    for ch in range(drawn):
        label = f"ch {ch + 1}" if drawn > 1 else None
        if frames > 4 * columns:
            step = frames // columns
            usable = audio[ch, : step * columns].reshape(columns, step)
            tt = t[: step * columns : step]
            wave_ax.fill_between(tt, usable.min(axis=1), usable.max(axis=1), linewidth=0, alpha=0.6, label=label)
        else:
            wave_ax.plot(t, audio[ch], linewidth=0.7, label=label)
    wave_ax.set_ylabel(f"amplitude (all {channels} ch)" if identical else "amplitude")
    wave_ax.set_ylim(-1.05, 1.05)
    wave_ax.grid(True, alpha=0.3)
    if drawn > 1:
        wave_ax.legend(loc="upper right", fontsize=8)

    mono = audio.mean(axis=0)
    nfft = 2048 if frames >= 2048 else max(64, 1 << int(np.log2(max(frames, 64))))
    if frames >= nfft:
        with np.errstate(divide="ignore"):  # silent passages are log10(0): drawn at the floor, not warned about
            *_, image = spec_ax.specgram(
                mono,
                NFFT=nfft,
                Fs=sample_rate,
                noverlap=nfft * 3 // 4,
                window=np.hanning(nfft),
                scale="dB",
                mode="magnitude",
                cmap="magma",
                vmin=FLOOR_DB,
                vmax=0.0,
            )
        colorbar = fig.colorbar(image, ax=spec_ax, pad=0.01)
        colorbar.set_label("dB")
    else:
        spec_ax.text(
            0.5,
            0.5,
            f"too short for a spectrogram ({frames} samples)",
            ha="center",
            va="center",
            transform=spec_ax.transAxes,
        )
    spec_ax.set_ylim(0, max_hz or sample_rate / 2)
    spec_ax.set_ylabel("frequency (Hz)")
    spec_ax.set_xlabel("time (s)")
    spec_ax.set_xlim(0, seconds)
    out = Path(output)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

"""Test-call audio without third-party code: the tone a test call plays, whether a recording holds a tone or
speech, and its waveform as an SVG picture for the result page."""

from __future__ import annotations

import array
import math
import wave
from dataclasses import dataclass
from pathlib import Path

TONE_HZ = 1000  # what a test call plays: a tone an echo or a person on the line hears plainly
SAMPLE_RATE = 8000
# Below this RMS (of 16-bit samples) a recording is silence: comfort noise and idle codecs sit far under it.
HEARD_RMS = 200
# A tone is "found" when its frequency holds this share of a window's energy (Goertzel against the total).
TONE_SHARE = 0.5


def write_tone(path: Path | str, seconds: float = 3.0, hz: float = TONE_HZ, amplitude: int = 8000) -> Path:
    """A 16-bit mono WAV of a sine tone, what the test call's user agent plays."""
    path = Path(path)
    count = int(SAMPLE_RATE * seconds)
    samples = array.array("h", (int(amplitude * math.sin(2 * math.pi * hz * i / SAMPLE_RATE)) for i in range(count)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())
    return path


def repair_wav(path: Path | str) -> None:
    """Set a WAV's RIFF and data sizes from the file's length: a recording whose writer was not closed (the
    agent's process ended first) keeps zero sizes, which browsers and readers take for an empty file."""
    path = Path(path)
    try:
        data = bytearray(path.read_bytes())
    except FileNotFoundError:
        return
    at = data.find(b"data", 12)
    if data[:4] != b"RIFF" or at < 0 or len(data) < at + 8:
        return
    size = len(data) - (at + 8)
    size -= size % 2
    data[4:8] = (at + size).to_bytes(4, "little")
    data[at + 4 : at + 8] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data[: at + 8 + size]))


def read_samples(path: Path | str) -> tuple[array.array, int]:
    """A WAV's samples (16-bit, first channel) and its rate; an empty or missing file has none."""
    try:
        with wave.open(str(path), "rb") as source:
            rate, channels, width = source.getframerate(), source.getnchannels(), source.getsampwidth()
            frames = source.readframes(source.getnframes())
    except (FileNotFoundError, EOFError, wave.Error):
        return array.array("h"), SAMPLE_RATE
    if width != 2:
        return array.array("h"), rate
    samples = array.array("h", frames)
    return (samples[::channels] if channels > 1 else samples), rate


def goertzel_share(samples, rate: int, hz: float) -> float:
    """The share of the samples' energy at ``hz`` (0 to 1)."""
    n = len(samples)
    if n == 0:
        return 0.0
    k = round(n * hz / rate)
    coeff = 2 * math.cos(2 * math.pi * k / n)
    s1 = s2 = 0.0
    total = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
        total += x * x
    if total == 0:
        return 0.0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return min(1.0, 2 * power / (n * total))


@dataclass(frozen=True)
class Heard:
    """What a recording holds: its loudness, whether anything was heard, and whether the tone was."""

    seconds: float
    rms: float
    heard: bool
    tone: bool

    @property
    def verdict(self) -> str:
        if self.tone:
            return "tone"
        return "audio" if self.heard else "no audio"


def analyse(path: Path | str, hz: float = TONE_HZ, window_s: float = 0.2) -> Heard:
    """Whether a recording holds sound (speech or tone energy) and the tone ``hz`` in any of its windows."""
    samples, rate = read_samples(path)
    if not samples:
        return Heard(0.0, 0.0, False, False)
    rms = math.sqrt(sum(x * x for x in samples) / len(samples))
    size = max(1, int(rate * window_s))
    tone = False
    loud_windows = 0
    for start in range(0, len(samples) - size + 1, size):
        window = samples[start : start + size]
        window_rms = math.sqrt(sum(x * x for x in window) / size)
        if window_rms < HEARD_RMS:
            continue
        loud_windows += 1
        if goertzel_share(window, rate, hz) >= TONE_SHARE:
            tone = True
    return Heard(len(samples) / rate, round(rms, 1), loud_windows > 0, tone)


def waveform_svg(path: Path | str, width: int = 600, height: int = 80, columns: int = 300) -> str:
    """The recording's waveform, each column the peak of its slice, as an SVG the page shows inline: drawn on the
    server, so the page needs no script to see what came back."""
    samples, rate = read_samples(path)
    middle = height / 2
    bars = []
    if samples:
        step = max(1, len(samples) // columns)
        for column in range(min(columns, len(samples) // step)):
            chunk = samples[column * step : (column + 1) * step]
            peak = max(abs(min(chunk)), abs(max(chunk))) / 32768
            half = max(0.5, peak * middle)
            x = column * width / columns
            bars.append(f'<rect x="{x:.1f}" y="{middle - half:.1f}" width="{max(1.0, width / columns - 0.5):.1f}" '
                        f'height="{2 * half:.1f}"/>')  # fmt: skip
    seconds = len(samples) / rate if samples else 0
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="Waveform of the recording, {seconds:.1f} s" class="waveform">'
        f'<line x1="0" y1="{middle}" x2="{width}" y2="{middle}" stroke="#ccc" stroke-width="1"/>'
        f'<g fill="#2c6fbb">{"".join(bars)}</g></svg>'
    )

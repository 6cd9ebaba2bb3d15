"""The Best ASR route policy's figures: what the worker publishes and the call core ranks vendors by."""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = [
    "ROUTE_STATS_POLL_S",
    "RouteStats",
]


# How often each call-core process reads ``Keys.route_asr`` (a GET on its snapshot poll).
ROUTE_STATS_POLL_S = 10.0


@dataclass(frozen=True)
class RouteStats:
    """Each routing gateway's (attempts, connected) over the last ``window_minutes``, as of ``at_ms``."""

    at_ms: int
    window_minutes: int
    gateways: dict[int, tuple[int, int]]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "at_ms": self.at_ms,
                "window_minutes": self.window_minutes,
                "gateways": {str(k): [a, c] for k, (a, c) in sorted(self.gateways.items())},
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> RouteStats:
        """Raises ValueError on anything but what ``encode`` writes."""
        try:
            data = json.loads(raw)
            gateways = {}
            for key, (attempts, connected) in data["gateways"].items():
                values = (int(key), attempts, connected)
                if not all(type(v) is int and v >= 0 for v in values) or connected > attempts:
                    raise ValueError(f"gateway {key}: {attempts!r} attempts, {connected!r} connected")
                gateways[values[0]] = (attempts, connected)
            at_ms, window = data["at_ms"], data["window_minutes"]
            if type(at_ms) is not int or type(window) is not int:
                raise ValueError("at_ms and window_minutes must be integers")
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not route stats: {exc!r}") from None
        return cls(at_ms, window, gateways)

"""JSON text of what the call core writes (CDRs, the call state, the live-call registry)."""

from __future__ import annotations

import json
import re

import msgspec

__all__ = ["json_text"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(value, *, sort_keys: bool = False) -> str:
    """Compact JSON as text; a lone surrogate becomes U+FFFD instead of failing the call.

    Text from Kamailio should never hold one, and msgspec refuses to encode it.
    """
    try:
        return msgspec.json.encode(value, order="sorted" if sort_keys else None).decode()
    except UnicodeEncodeError:
        builtins = msgspec.to_builtins(value)
        text = json.dumps(builtins, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False)
        return _SURROGATE.sub("\ufffd", text)

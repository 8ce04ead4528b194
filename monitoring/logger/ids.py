"""Request ids: time-ordered, unique across threads, processes and hosts (UUIDv7 layout).

    new_id(ts_us) -> "0192f1a4-7c3e-7000-8000-5b1e9c2d4a7f"

The 128 bits follow RFC 9562's UUIDv7: 48 bits of Unix milliseconds, the version (7), a
26-bit sequence within the millisecond split around the variant bits (12 + 14 bits), then a
48-bit node drawn at random once per process and again in every forked child. So:

- ids of one process strictly increase, also when the clock steps back or more than 2**26
  ids are made in one millisecond (the millisecond field then runs ahead of the clock);
- the lowercase hex strings sort like the ids, i.e. by time;
- two processes (on any hosts) can only collide when they drew the same 48-bit node
  (probability 2**-48 per pair) and made an id in the same millisecond with the same
  sequence number.
"""

from __future__ import annotations

import os
import threading

_SEQ_BITS = 26
_SEQ_MAX = (1 << _SEQ_BITS) - 1
_VERSION = 7 << 76
_VARIANT = 0b10 << 62

_lock = threading.Lock()
_last_ms = -1
_seq = 0
_node = int.from_bytes(os.urandom(6), "big")


def _reseed_after_fork() -> None:
    # A forked child shares its parent's node and sequence: draw a new node so the two
    # processes can never make the same id.
    global _lock, _node, _last_ms, _seq
    _lock = threading.Lock()
    _node = int.from_bytes(os.urandom(6), "big")
    _last_ms, _seq = -1, 0


if hasattr(os, "register_at_fork"):   # POSIX
    os.register_at_fork(after_in_child=_reseed_after_fork)


def new_id(ts_us: int) -> str:
    """A new id for a request that arrived at `ts_us` (microseconds since the epoch, UTC)."""
    global _last_ms, _seq
    ms = ts_us // 1000
    with _lock:
        if ms > _last_ms:
            _last_ms, _seq = ms, 0
        elif _seq < _SEQ_MAX:
            ms, _seq = _last_ms, _seq + 1
        else:
            _last_ms, _seq = _last_ms + 1, 0
            ms = _last_ms
        seq = _seq
    value = ((ms & 0xFFFFFFFFFFFF) << 80 | _VERSION | (seq >> 14) << 64 | _VARIANT
             | (seq & 0x3FFF) << 48 | _node)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def id_millis(request_id: str) -> int:
    """The Unix milliseconds field of an id made by `new_id`."""
    return int(request_id.replace("-", "")[:12], 16)

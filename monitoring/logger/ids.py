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
_SEQ_TABLE = 1024
_SEQ_HEX = [f"000-{0x8000 | seq:04x}" for seq in range(_SEQ_TABLE)]   # seq < 2**14: high bits 0

_lock = threading.Lock()
_last_ms = -1
_seq = 0
_prefix = ""      # the hex of _last_ms and the version nibble: "01932c6e-1a2b-7"
_tail = ""        # "-" and the hex of the node: "-5b1e9c2d4a7f"


def _new_node() -> None:
    global _tail
    _tail = f"-{int.from_bytes(os.urandom(6), 'big'):012x}"


def _ms_prefix(ms: int) -> str:
    return f"{ms >> 16 & 0xFFFFFFFF:08x}-{ms & 0xFFFF:04x}-7"


def _reseed_after_fork() -> None:
    # A forked child shares its parent's node and sequence: draw a new node so the two
    # processes can never make the same id.
    global _lock, _last_ms, _seq, _prefix
    _lock = threading.Lock()
    _new_node()
    _last_ms, _seq, _prefix = -1, 0, ""


_new_node()
if hasattr(os, "register_at_fork"):   # POSIX
    os.register_at_fork(after_in_child=_reseed_after_fork)


def new_id(ts_us: int) -> str:
    """A new id for a request that arrived at `ts_us` (microseconds since the epoch, UTC)."""
    global _last_ms, _seq, _prefix
    ms = ts_us // 1000
    with _lock:
        if ms > _last_ms:
            _last_ms, _seq, _prefix = ms, 0, _ms_prefix(ms)
        elif _seq < _SEQ_MAX:
            _seq += 1
        else:   # 2**26 ids in one millisecond: run the millisecond field ahead of the clock
            _last_ms, _seq = _last_ms + 1, 0
            _prefix = _ms_prefix(_last_ms)
        seq, prefix = _seq, _prefix
    # The hex string is made of parts: the millisecond's, formatted once per millisecond; the
    # node's, once per process; the sequence's (split around the variant bits) from a table
    # for the first ids of a millisecond, formatted beyond.
    if seq < _SEQ_TABLE:
        return prefix + _SEQ_HEX[seq] + _tail
    return f"{prefix}{seq >> 14:03x}-{0x8000 | seq & 0x3FFF:04x}{_tail}"


def id_millis(request_id: str) -> int:
    """The Unix milliseconds field of an id made by `new_id`."""
    return int(request_id.replace("-", "")[:12], 16)

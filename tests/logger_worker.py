"""A process that logs predictions, driven by the logger tests: `python -m tests.logger_worker MODE DIR ...`.

Modes:
  stream DIR                 log rows 0, 1, 2, ... forever (single producer); after every
                             completed file print "flushed <rows written so far>"
  burst DIR TAG N GO         wait for the file GO to exist, then log N rows from 2 threads, close
  exit DIR N                 log N rows and return without close() (atexit must write them)
  sigterm DIR N PREVIOUS     install a PREVIOUS SIGTERM handler ("default", "python", "ignore"),
                             log N rows, print "ready", then wait to be signalled
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from monitoring.logger import PredictionLogger


def stream(directory: str) -> None:
    lg = PredictionLogger(directory, "credit", "v1", flush_rows=500, flush_seconds=3600,
                          poll_seconds=0.005, max_queue_rows=10**7)
    seq, files = 0, 0
    while True:
        for _ in range(100):
            lg.log(prediction=seq % 2, latency_ms=1.0 + seq % 7, features={"seq": seq, "x": seq / 3})
            seq += 1
        st = lg.stats()
        if st["files"] != files:
            files = st["files"]
            print(f"flushed {st['written']}", flush=True)
        time.sleep(0.001)


def burst(directory: str, tag: str, n: int, go: str) -> None:
    lg = PredictionLogger(directory, "credit", "v1", flush_rows=250, flush_seconds=0.05,
                          poll_seconds=0.005, max_queue_rows=10**7)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.01)

    def work(part: int) -> None:
        for seq in range(part, n, 2):
            with lg.request(endpoint="/v1/predict", features={"writer": tag, "seq": seq}) as r:
                r.prediction, r.score = seq % 3, (seq % 10) / 10

    threads = [threading.Thread(target=work, args=(p,)) for p in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lg.close()
    print(f"done {lg.stats()['written']} {lg.stats()['dropped']}", flush=True)


def exit_without_close(directory: str, n: int) -> None:
    lg = PredictionLogger(directory, "credit", "v1", flush_rows=10**9, flush_seconds=3600)
    for i in range(n):
        lg.log(prediction=i, latency_ms=1.0, features={"seq": i})


def sigterm(directory: str, n: int, previous: str) -> None:
    if previous == "python":
        def handler(signum, frame):
            print("previous handler ran", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, handler)
    elif previous == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lg = PredictionLogger(directory, "credit", "v1", flush_rows=10**9, flush_seconds=3600)
    for i in range(n):
        lg.log(prediction=i, latency_ms=1.0, features={"seq": i})
    print("ready", flush=True)
    while True:
        line = sys.stdin.readline()   # "stats" asks for the counts; end of input ends the wait
        if not line:
            os._exit(0)               # no atexit: whatever is on disk came from the signal
        print(f"written {lg.stats()['written']}", flush=True)


if __name__ == "__main__":
    mode, directory, *rest = sys.argv[1:]
    if mode == "stream":
        stream(directory)
    elif mode == "burst":
        burst(directory, rest[0], int(rest[1]), rest[2])
    elif mode == "exit":
        exit_without_close(directory, int(rest[0]))
    elif mode == "sigterm":
        sigterm(directory, int(rest[0]), rest[1])
    else:
        raise SystemExit(f"unknown mode {mode}")

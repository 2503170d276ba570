#!/usr/bin/env python3
"""Mrs. Premise or Mrs. Conclusion over one shared memory segment and one semaphore, in Python,
for the interoperation tests. Written from the sysv_ipc documentation's description of its
sem_and_shm demo: same params.txt, same wire format (NUL-terminated ASCII at offset 0, each
message the lowercase hex MD5 of the one before), same order of operations as the Swift and C
versions.

Usage: sem_and_shm.py premise|conclusion [params.txt]
"""
import signal
import sys
import time

import sysv_ipc

from common import md5, read_params, say


def read_text(memory):
    data = memory.read()
    end = data.find(b"\0")
    return data if end < 0 else data[:end]


def write_text(memory, text):
    memory.write(text + b"\0")


class Interrupted(Exception):
    pass


def premise(params):
    key = params["KEY"]
    danger = params["LIVE_DANGEROUSLY"]
    mode = params.get("PERMISSIONS", 0o600)
    semaphore = sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX, mode=mode, initial_value=0)
    try:
        memory = sysv_ipc.SharedMemory(key, sysv_ipc.IPC_CREX, mode=mode, size=params["SHM_SIZE"])
    except Exception:
        semaphore.remove()
        raise

    def stop(number, frame):
        raise Interrupted()

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, stop)
    status = 0
    try:
        last = time.asctime().encode()
        write_text(memory, last)
        say("premise", f"wrote {last.decode()}")

        def turn():
            if not danger:
                semaphore.release()
                semaphore.acquire()

        for i in range(params["ITERATIONS"]):
            say("premise", f"iteration {i}")
            turn()
            text = read_text(memory)
            while text == last:
                turn()
                text = read_text(memory)
            say("premise", f"read {text.decode(errors='replace')}")
            if text != md5(last):
                say("premise", f"Shared memory corruption after {i} iterations")
                status = 1
                break
            last = md5(text)
            write_text(memory, last)
            say("premise", f"wrote {last.decode()}")
        if not danger and status == 0:
            # Let Mrs. Conclusion finish: release, wait until she detached (at most 5 s), and
            # take the semaphore back before removing it.
            semaphore.release()
            deadline = time.monotonic() + 5
            while memory.number_attached > 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            semaphore.acquire()
    except Interrupted:
        say("premise", "interrupted")
        status = 130
    finally:
        say("premise", "Destroying semaphore and shared memory")
        memory.detach()
        memory.remove()
        semaphore.remove()
    return status


def conclusion(params):
    key = params["KEY"]
    danger = params["LIVE_DANGEROUSLY"]
    semaphore = sysv_ipc.Semaphore(key)
    memory = sysv_ipc.SharedMemory(key)
    last = b""
    for i in range(params["ITERATIONS"]):
        say("conclusion", f"iteration {i}")
        if not danger:
            semaphore.acquire()
        text = read_text(memory)
        while text == last:
            if not danger:
                semaphore.release()
                semaphore.acquire()
            text = read_text(memory)
        say("conclusion", f"read {text.decode(errors='replace')}")
        # The first message (the time) cannot be checked.
        if last and text != md5(last):
            say("conclusion", f"Shared memory corruption after {i} iterations")
            if not danger:
                semaphore.release()
            return 1
        last = md5(text)
        write_text(memory, last)
        say("conclusion", f"wrote {last.decode()}")
        if not danger:
            semaphore.release()
    memory.detach()
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("premise", "conclusion"):
        sys.exit(__doc__)
    parameters = read_params(sys.argv[2] if len(sys.argv) == 3 else "params.txt")
    sys.exit(premise(parameters) if sys.argv[1] == "premise" else conclusion(parameters))

#!/usr/bin/env python3
"""The Python side of the semaphore interoperation test.

Usage: semaphore.py KEY

Opens the semaphore at KEY (created by the Swift test with value 1), acquires it, shows that a
short timed acquire now fails with BusyError (so timeouts work in this build of sysv_ipc), then
waits up to 30 s to acquire it again, which succeeds once the Swift side releases it. Prints
key=value lines as it goes; exit status 0 when every step behaved.
"""
import sys
import time

import sysv_ipc


def report(key, value):
    print(f"{key}={value}", flush=True)


def main():
    semaphore = sysv_ipc.Semaphore(int(sys.argv[1]))
    semaphore.acquire(timeout=10)
    report("acquired", semaphore.value)
    start = time.monotonic()
    try:
        semaphore.acquire(timeout=0.2)
        report("timeout", "not-honoured")
        return 1
    except sysv_ipc.BusyError:
        report("timeout", f"{time.monotonic() - start:.3f}")
    report("waiting", "yes")
    semaphore.acquire(timeout=30)
    report("reacquired", semaphore.value)
    return 0


if __name__ == "__main__":
    sys.exit(main())

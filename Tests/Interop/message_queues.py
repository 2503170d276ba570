#!/usr/bin/env python3
"""Mrs. Premise or Mrs. Conclusion over one message queue, in Python, for the interoperation
tests. Written from the sysv_ipc documentation's description of its message_queues demo: same
params.txt (ITERATIONS, KEY), same messages (type 1, each the lowercase hex MD5 of the one
before), same order of operations as the Swift version.

Usage: message_queues.py premise|conclusion [params.txt]
"""
import sys
import time

import sysv_ipc

from common import md5, read_params, say


def receive_new(role, queue, last):
    """Receives until the message is not what this side sent last, putting its own back."""
    message, _ = queue.receive()
    while message == last:
        queue.send(message)
        message, _ = queue.receive()
    say(role, f"received {message.decode(errors='replace')}")
    return message


def premise(params):
    queue = sysv_ipc.MessageQueue(
        params["KEY"], sysv_ipc.IPC_CREX, mode=params.get("PERMISSIONS", 0o600))
    status = 0
    try:
        last = time.asctime().encode()
        queue.send(last)
        for i in range(params["ITERATIONS"]):
            message = receive_new("premise", queue, last)
            if message != md5(last):
                say("premise", f"Message corruption after {i} iterations")
                status = 1
                break
            last = md5(message)
            queue.send(last)
    finally:
        say("premise", "Destroying the message queue")
        queue.remove()
    return status


def conclusion(params):
    queue = sysv_ipc.MessageQueue(params["KEY"])
    last = b""
    for i in range(params["ITERATIONS"]):
        message = receive_new("conclusion", queue, last)
        if last and message != md5(last):
            say("conclusion", f"Message corruption after {i} iterations")
            return 1
        last = md5(message)
        queue.send(last)
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("premise", "conclusion"):
        sys.exit(__doc__)
    parameters = read_params(sys.argv[2] if len(sys.argv) == 3 else "params.txt")
    sys.exit(premise(parameters) if sys.argv[1] == "premise" else conclusion(parameters))

#!/usr/bin/env python3
"""The Python side of the typed request/reply test over one message queue.

Usage: mq_server.py KEY

Serves requests of type 1 only. A request is "PID NUMBER"; the reply, of type PID (so that each
client receives only its own replies), is "NUMBER squared is N". The request "PID quit" ends the
server after replying "bye". Messages of other types are left on the queue.
"""
import sys

import sysv_ipc


def main():
    queue = sysv_ipc.MessageQueue(int(sys.argv[1]))
    print("serving=yes", flush=True)
    served = 0
    while True:
        message, message_type = queue.receive(type=1)
        assert message_type == 1
        pid, argument = message.decode().split(" ", 1)
        if argument == "quit":
            queue.send(b"bye", type=int(pid))
            print(f"served={served}", flush=True)
            return 0
        number = int(argument)
        queue.send(f"{number} squared is {number * number}".encode(), type=int(pid))
        served += 1


if __name__ == "__main__":
    sys.exit(main())

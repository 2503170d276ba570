#!/usr/bin/env python3
"""The Python side of the differential test (issue 16): runs operations on sysv_ipc objects.

Driven over a pipe by Tests/SysVIPCTests/DifferentialTests.swift: one JSON request a line on
standard input, one JSON reply a line on standard output. The Swift side runs the same
operations through SysVIPC on objects of its own and compares, after each operation, the
result, the error class and the kernel's state.

Requests ({"op": NAME, ...}):
  begin   kind ("sem"|"shm"|"mq"), key, missing: a fresh sequence at this side's two keys
  run     name and the operation's fields (see run()); reply {"r": result} or {"e": class, "errno": n},
          and "probe": what each handle sees (semaphore value, segment contents' CRC-32)
  ids     reply {"ids": [every object id this sequence created or opened]}
  cleanup remove every object this driver created, and whatever is at its two keys
          (errors ignored); reply {"removed": n}. Also done when the driver ends.
  quit
A result is a string, formatted exactly as the Swift side formats its own.
"""
import json
import sys
import zlib

import sysv_ipc

FLAGS = [0, sysv_ipc.IPC_CREAT, sysv_ipc.IPC_EXCL, sysv_ipc.IPC_CREX]


def digest(data):
    """CRC-32 (zlib's): a digest both sides compute the same way."""
    return zlib.crc32(data)


PATTERNS = {}


def payload(seed, length):
    """The bytes an operation writes or sends: derived from its seed, as the Swift side does."""
    pattern = PATTERNS.get(seed)
    if pattern is None:
        pattern = PATTERNS[seed] = bytes((seed + i * 31) & 0xFF for i in range(20000))
    if length <= len(pattern):
        return pattern[:length]
    return bytes((seed + i * 31) & 0xFF for i in range(length))


class Driver:
    def __init__(self):
        self.kind = None
        self.key = 0
        self.missing = 0
        self.handles = []
        self.ids = set()

    def begin(self, request):
        self.kind = request["kind"]
        self.key = request["key"]
        self.missing = request["missing"]
        self.handles = []
        self.ids = set()
        return {}

    def handle(self, request):
        return self.handles[request["h"] % len(self.handles)]

    def run(self, request):
        op = request["name"]
        a, b, c = request.get("a", 0), request.get("b", 0), request.get("c", 0)
        flags = FLAGS[request.get("f", 0)]
        key = request.get("key", self.key)
        if op == "create":
            if self.kind == "sem":
                h = sysv_ipc.Semaphore(key, flags, mode=a, initial_value=b)
            elif self.kind == "shm":
                h = sysv_ipc.SharedMemory(key, flags, mode=a, size=b, init_character=bytes([c]))
            else:
                h = sysv_ipc.MessageQueue(key, flags, mode=a, max_message_size=b)
            keep = request.get("keep", True)
            self.ids.add(h.id)  # both keys were free when the sequence began
            if keep:
                self.handles.append(h)
            elif self.kind == "shm":
                h.detach()  # sysv_ipc never detaches by itself
            return "ok"
        if op == "noop":  # an operation the Swift side alone runs: only the probe is wanted
            return "ok"
        h = self.handle(request)
        if op == "remove":
            h.remove()
            return "ok"
        if op == "mode":
            return f"{h.mode:o}"
        if op == "setMode":
            h.mode = a
            return "ok"
        if op == "owner":
            return f"{h.uid},{h.gid},{h.cuid},{h.cgid}"
        if op == "setOwner":
            h.uid = a
            h.gid = b
            return "ok"
        if self.kind == "sem":
            if op == "acquire":
                h.block, h.undo = bool(b & 1), bool(b & 2)
                h.acquire(timeout=0 if b & 4 else None, delta=a)
                return "ok"
            if op == "release":
                h.undo = bool(b & 2)
                h.release(delta=a)
                return "ok"
            if op == "zero":
                h.block = bool(b & 1)
                h.Z(timeout=0 if b & 4 else None)
                return "ok"
            if op == "value":
                return str(h.value)
            if op == "setValue":
                h.value = a
                return "ok"
            if op == "waiters":
                return f"{h.waiting_for_nonzero},{h.waiting_for_zero}"
        elif self.kind == "shm":
            if op == "attach":
                h.attach(flags=sysv_ipc.SHM_RDONLY if a else 0)
                return "ok"
            if op == "detach":
                h.detach()
                return "ok"
            if op == "read":
                data = h.read(a, offset=b)
                return f"{len(data)}:{digest(data):x}"
            if op == "write":
                h.write(payload(c, a), offset=b)
                return "ok"
            if op == "fill":  # puts Python back in step: see DifferentialDifference
                h.write(bytes([c]) * h.size)
                return "ok"
            if op == "size":
                return str(h.size)
            if op == "attached":
                return f"{int(h.attached)},{h.number_attached}"
        else:
            if op == "send":
                h.send(payload(c, a), block=False, type=b)
                return "ok"
            if op == "receive":
                message, mtype = h.receive(block=False, type=b)
                return f"{mtype}:{len(message)}:{digest(message):x}"
            if op == "maxSize":
                return str(h.max_size)
            if op == "setMaxSize":
                h.max_size = a
                return "ok"
            if op == "counts":
                return str(h.current_messages)
        raise RuntimeError(f"unknown operation {op} for {self.kind}")

    def probe(self):
        """What each handle sees now: a semaphore's value, an attached segment's contents."""
        seen = []
        for h in self.handles:
            try:
                if self.kind == "sem":
                    seen.append(str(h.value))
                elif self.kind == "shm":
                    seen.append(f"{digest(h.read()):x}" if h.attached else "detached")
                else:
                    seen.append("-")
            except sysv_ipc.ExistentialError:
                seen.append("gone")
            except Exception as error:  # noqa: BLE001 - reported, compared
                seen.append(type(error).__name__)
        return seen

    def cleanup(self):
        removed = 0
        remove = {
            "sem": sysv_ipc.remove_semaphore,
            "shm": sysv_ipc.remove_shared_memory,
            "mq": sysv_ipc.remove_message_queue,
        }.get(self.kind)
        for h in self.handles:
            if self.kind == "shm":
                try:
                    h.detach()
                except Exception:  # noqa: BLE001 - already detached or removed
                    pass
        for object_id in sorted(self.ids):
            try:
                remove(object_id)
                removed += 1
            except Exception:  # noqa: BLE001 - removed by the sequence itself
                pass
        # Whatever is left at the sequence's two keys is this driver's too: both were free
        # when the sequence began (the Swift side checks), and they are random.
        opener = {
            "sem": sysv_ipc.Semaphore,
            "shm": sysv_ipc.SharedMemory,
            "mq": sysv_ipc.MessageQueue,
        }.get(self.kind)
        for key in (self.key, self.missing):
            for _ in range(10):
                try:
                    h = opener(key)
                except Exception:  # noqa: BLE001 - nothing there (ExistentialError)
                    break
                try:
                    h.remove()
                    removed += 1
                finally:
                    if self.kind == "shm":
                        h.detach()
        self.handles = []
        self.ids = set()
        return {"removed": removed}


def main():
    driver = Driver()
    try:
        serve(driver)
    finally:
        # Also when the pipe breaks or a request is malformed: nothing is left behind.
        driver.cleanup()
    return 0


def serve(driver):
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        if op == "quit":
            return
        if op == "begin":
            reply = driver.begin(request)
        elif op == "cleanup":
            reply = driver.cleanup()
        elif op == "ids":
            reply = {"ids": sorted(driver.ids) + [h.id for h in driver.handles]}
        elif op == "run":
            try:
                reply = {"r": driver.run(request)}
            except Exception as error:  # noqa: BLE001 - the error class is the result
                reply = {"e": type(error).__name__, "errno": getattr(error, "errno", None)}
            reply["probe"] = driver.probe()
            reply["hid"] = [h.id for h in driver.handles]
        else:
            raise RuntimeError(f"unknown request {op}")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The channel's long exactly-once runs (issue 13), beyond the few seconds `swift test` spends:
4 producers x 100,000 messages of random sizes into one consumer, with a roomy ring (64 slots)
and a tiny one (2), Swift producers into a Swift consumer and C producers into a Swift consumer.
Checks count, checksum, order per producer and that no message is corrupt.

    python3 Scripts/channel-load.py [--messages 100000] [--no-build]

Uses the debug build's SysVIPCTestHelper and sysvipc-channel-c (built first unless --no-build).
Removes the channels it creates, also when a run fails.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def values(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and " " not in line.split("=", 1)[0])


def run(bindir, producers_c, capacity, messages, maxsize=512):
    peer = os.path.join(bindir, "sysvipc-channel-c")
    helper = os.path.join(bindir, "SysVIPCTestHelper")
    created = values(subprocess.run([peer, "create", str(capacity), str(maxsize)], capture_output=True, text=True, check=True).stdout)
    shm, sem = created["id"], created["semid"]
    try:
        start = time.time()
        consumer = subprocess.Popen([helper, "chan-consume", shm, str(4 * messages), "--into"], stdout=subprocess.PIPE, text=True)
        producers = []
        for p in range(4):
            if producers_c:
                command = [peer, "produce", shm, str(p), str(messages), str(maxsize), "11"]
            else:
                command = [helper, "chan-produce", shm, str(p), str(messages), str(maxsize), "--seed", "11"]
            producers.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        sent = [values(p.communicate(timeout=1800)[0]) for p in producers]
        got = values(consumer.communicate(timeout=1800)[0])
        seconds = time.time() - start
        checksum = sum(int(s.get("checksum", "0")) for s in sent) % (1 << 64)
        ok = (all(s.get("result") == "ok" for s in sent) and got.get("result") == "ok"
              and got.get("received") == str(4 * messages) and got.get("corrupt") == "0"
              and got.get("disorder") == "0" and got.get("checksum") == str(checksum)
              and all(got.get(f"p{p}") == str(messages) for p in range(4)))
        name = f"{'C' if producers_c else 'Swift'} producers -> Swift consumer, capacity {capacity}"
        print(f"{name}: {got.get('received')} messages in {seconds:.1f} s, checksum {'matches' if got.get('checksum') == str(checksum) else 'DIFFERS'}, "
              f"corrupt {got.get('corrupt')}, disorder {got.get('disorder')}: {'ok' if ok else 'FAILED'}", flush=True)
        return ok
    finally:
        subprocess.run(["ipcrm", "-m", shm, "-s", sem], capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000, help="per producer")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["swift", "build", "--product", "SysVIPCTestHelper"], cwd=ROOT, check=True)
        subprocess.run(["swift", "build", "--product", "sysvipc-channel-c"], cwd=ROOT, check=True)
    bindir = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    results = [run(bindir, c, capacity, args.messages) for c in (False, True) for capacity in (64, 2)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

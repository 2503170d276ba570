#!/usr/bin/env python3
"""Runs the C and Swift benchmarks interleaved and prints the median Swift/C ratio per scenario.

    python3 Benchmarks/run.py [--rounds 7] [--pins same,split] [--only REGEX] [--scale 1.0]
                              [--no-build] [--raw FILE] [--markdown]

Builds both (swift build -c release in Benchmarks/; cc -O2 for c/ipc-bench.c), then for each
round runs every case once in C and once in Swift, back to back (C, Swift, C, Swift, ...), so
that both see the same machine load. Each round gives one ratio per case; the table shows the
median over the rounds:

  - time per op, Swift / C (lower is better; target <= 1.10) for syscall-bound cases;
  - bandwidth, Swift / C (higher is better; target >= 0.90 copying, >= 0.98 zero-copy) for shm
    (api=alloc: Swift's read(count:) -> [UInt8] against C's malloc + memcpy + free per read).

On a shared, noisy machine only these interleaved ratios mean anything; the absolute figures
are shown for orientation. Finally runs alloc-count (allocations per hot-path operation).
Exits 1 when a run failed.
"""

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, ".build")
SWIFT_BIN = os.path.join(BUILD, "release", "ipc-bench")
ALLOC_BIN = os.path.join(BUILD, "release", "alloc-count")
C_BIN = os.path.join(BUILD, "ipc-bench-c")

SIZES_SHM = [4096, 1048576, 67108864]
SIZES_MQ = [8, 64, 1024, 8192]

# Fields that identify a case in a result line (everything else is a measurement).
MEASUREMENTS = {"impl", "ops", "seconds", "ops_per_s", "MB_per_s", "rtt_us", "check", "switches", "child_switches"}


def cases(pins, scale):
    """(label, arguments) for every case, with iteration counts that keep a run near 0.1-0.3 s
    here (2 shared cores). Cross-CPU hand-overs (split) cost ~40 us on this machine, hence the
    smaller counts for them."""

    def n(count):
        return str(max(1, int(count * scale)))

    # Single-process cases run unpinned: on this shared machine the scheduler can then move
    # them off a CPU that another job is using. Two-process cases run under each of `pins`.
    out = [
        ("sem_uncontended", ["sem_uncontended", "--pin", "none", "--iterations", n(200_000)]),
    ]
    for pin in pins:
        split = pin != "same"
        out.append(("sem_pingpong", ["sem_pingpong", "--pin", pin, "--iterations", n(5_000 if split else 40_000)]))
    for pin in pins:
        split = pin != "same"
        for size in SIZES_MQ:
            count = (20_000 if split else 100_000) if size <= 1024 else (10_000 if split else 30_000)
            out.append(("mq_throughput", ["mq_throughput", "--size", str(size), "--pin", pin, "--iterations", n(count)]))
        out.append(("mq_pingpong", ["mq_pingpong", "--pin", pin, "--iterations", n(5_000 if split else 30_000)]))
    for size in [64, 8192]:
        out.append(("mq_local", ["mq_local", "--size", str(size), "--pin", "none", "--iterations", n(100_000)]))
        # The same through MessageQueue.MessageBuffer: no copy in user space, as C's msgbuf.
        out.append(("mq_local", ["mq_local", "--size", str(size), "--api", "buffer", "--pin", "none", "--iterations", n(100_000)]))
    for scenario in ["shm_write", "shm_read"]:
        for size in SIZES_SHM:
            for api in ["copy", "zerocopy"]:
                count = {4096: 2_000_000, 1048576: 6_000, 67108864: 12}[size]
                out.append((scenario, [scenario, "--size", str(size), "--api", api, "--pin", "none", "--iterations", n(count)]))
    for size in SIZES_SHM:
        # Swift's read(count:) -> [UInt8] against C's malloc + memcpy + free: the same work.
        count = {4096: 2_000_000, 1048576: 6_000, 67108864: 12}[size]
        out.append(("shm_read", ["shm_read", "--size", str(size), "--api", "alloc", "--pin", "none", "--iterations", n(count)]))
    for pin in pins:
        split = pin != "same"
        out.append(("shm_counter", ["shm_counter", "--pin", pin, "--iterations", n(5_000 if split else 50_000)]))
    out.append(("stat", ["stat", "--pin", "none", "--iterations", n(100_000)]))
    # The message channel (issue 13), measured in the same rounds as mq_throughput/mq_pingpong.
    for pin in pins:
        split = pin != "same"
        for size in SIZES_MQ:
            count = (400_000 if split else 200_000) if size <= 1024 else (100_000 if split else 50_000)
            out.append(("chan_throughput", ["chan_throughput", "--size", str(size), "--pin", pin, "--iterations", n(count)]))
        out.append(("chan_pingpong", ["chan_pingpong", "--pin", pin, "--iterations", n(50_000 if split else 30_000)]))
        # The same on single-producer channels (plain stores instead of compare-and-swaps).
        out.append(("chan_throughput", ["chan_throughput", "--size", "64", "--api", "single", "--pin", pin, "--iterations", n(400_000 if split else 200_000)]))
        out.append(("chan_pingpong", ["chan_pingpong", "--api", "single", "--pin", pin, "--iterations", n(50_000 if split else 30_000)]))
        if split:
            out.append(("limit_pingpong", ["limit_pingpong", "--pin", pin, "--iterations", n(200_000)]))
    # Send -> resumption of a receiver waiting in the async receive (Swift) or msgrcv (C); one
    # wake-up per ms, so ~0.35 s a run. --api blocking: the blocking receive, against the same C;
    # --api executor: the async receive in a task that prefers IPCWaitExecutor.
    for api in ["async", "executor", "blocking"]:
        for pin in ["none"] + pins:
            out.append(("mq_wake", ["mq_wake", "--api", api, "--pin", pin, "--iterations", n(300)]))
    return out


# Scenarios that only the C program has: measured for reference (the floor), no ratio.
C_ONLY = {"limit_pingpong"}


def channel_summary(results, c_only):
    """The channel against the message queue and the floor, from the medians of this run."""

    def median(key, field, impl):
        pairs = results.get(key)
        if not pairs:
            return None
        index = 0 if impl == "c" else 1
        values = [float(pair[index][field]) for pair in pairs]
        return statistics.median(values)

    lines = []
    for key in sorted(results):
        if not key.startswith("scenario=chan_"):
            continue
        mq_key = key.replace("scenario=chan_", "scenario=mq_").replace(" api=single", "")
        for impl in ["swift", "c"]:
            if key.startswith("scenario=chan_throughput"):
                chan, mq = median(key, "ops_per_s", impl), median(mq_key, "ops_per_s", impl)
                if chan and mq:
                    lines.append(f"{key.replace('scenario=', '')} {impl}: {chan:,.0f} msg/s = {chan / mq:.1f}x mq_throughput ({mq:,.0f})")
            else:
                chan, mq = median(key, "rtt_us", impl), median(mq_key, "rtt_us", impl)
                if chan and mq:
                    line = f"{key.replace('scenario=', '')} {impl}: {chan:.2f} us = 1/{mq / chan:.1f} of mq_pingpong ({mq:.2f} us)"
                    pin = key.split("pin=")[-1].split()[0]
                    limit = c_only.get(f"scenario=limit_pingpong pin={pin}")
                    if limit:
                        floor = statistics.median(float(r["rtt_us"]) for r in limit)
                        line += f", {chan / floor:.2f}x limit_pingpong ({floor:.2f} us)"
                    lines.append(line)
    return lines


def build():
    print("building: swift build -c release (Benchmarks/), cc -O2 c/ipc-bench.c", flush=True)
    subprocess.run(["swift", "build", "-c", "release"], cwd=HERE, check=True)
    os.makedirs(BUILD, exist_ok=True)
    subprocess.run(
        ["cc", "-O2", "-Wall", "-o", C_BIN, os.path.join(HERE, "c", "ipc-bench.c"), "-lpthread"],
        check=True,
    )


def parse(line):
    return dict(field.split("=", 1) for field in line.split() if "=" in field)


def run(binary, arguments, raw):
    """Runs one case; returns its result lines as dicts (stat prints one per kind)."""
    command = [binary] + arguments + ["--timeout", "240"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    if raw:
        raw.write(done.stdout)
    if done.returncode != 0:
        return None, (done.stderr.strip() or f"exit {done.returncode}")
    lines = [parse(line) for line in done.stdout.splitlines() if line.startswith("scenario=")]
    return lines, None


def case_key(result):
    return " ".join(f"{k}={v}" for k, v in result.items() if k not in MEASUREMENTS)


def target(key):
    if key.startswith("scenario=mq_wake"):
        return (1.20, "time")  # wake-up latency (issue 12)
    if key.startswith("scenario=mq_local"):
        return (1.10, "time")  # one op = send + receive: time per op, not the bandwidth
    if key.startswith("scenario=shm_write") or key.startswith("scenario=shm_read"):
        return (0.98, "bw") if "api=zerocopy" in key else (0.90, "bw")  # copy, alloc
    return (1.10, "time")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pins", default="same,split", help="pin modes for two-process cases")
    parser.add_argument("--only", default=None, help="regex on the case's arguments")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies iteration counts")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--raw", default=None, help="append every result line to this file")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--swift-bin", default=None,
                        help="another Swift ipc-bench to compare with C (e.g. a build of a library change)")
    parser.add_argument("--no-alloc", action="store_true", help="skip alloc-count")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    global SWIFT_BIN
    if not args.no_build:
        build()
    if args.swift_bin:
        SWIFT_BIN = os.path.abspath(args.swift_bin)
    available = set(subprocess.run([SWIFT_BIN, "list"], capture_output=True, text=True, check=True).stdout.split())
    pins = [p for p in args.pins.split(",") if p]
    selected = []
    available_c = set(subprocess.run([C_BIN, "list"], capture_output=True, text=True, check=True).stdout.split())
    for scenario, arguments in cases(pins, args.scale):
        if scenario not in available and not (scenario in C_ONLY and scenario in available_c):
            continue
        if args.only and not re.search(args.only, " ".join(arguments)):
            continue
        selected.append(arguments)
    skipped = sorted({s for s, _ in cases(pins, args.scale)} - available - (C_ONLY & available_c))

    raw = open(args.raw, "a") if args.raw else None
    results = {}  # key -> list of (c, swift) per round
    c_only = {}  # key -> list of C results (scenarios without a Swift side)
    failures = []
    started = time.time()
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number}/{args.rounds} ({time.time() - started:.0f} s)", flush=True)
        for arguments in selected:
            if arguments[0] in C_ONLY:
                c_lines, c_error = run(C_BIN, arguments, raw)
                if c_error:
                    failures.append(f"{' '.join(arguments)}: c: {c_error}")
                    continue
                for c in c_lines:
                    c_only.setdefault(case_key(c), []).append(c)
                continue
            c_lines, c_error = run(C_BIN, arguments, raw)
            swift_lines, swift_error = run(SWIFT_BIN, arguments, raw)
            if c_error or swift_error:
                failures.append(f"{' '.join(arguments)}: c: {c_error or 'ok'}; swift: {swift_error or 'ok'}")
                continue
            for c, swift in zip(c_lines, swift_lines):
                key = case_key(c)
                if key != case_key(swift):
                    failures.append(f"{' '.join(arguments)}: lines differ: {key} / {case_key(swift)}")
                    continue
                results.setdefault(key, []).append((c, swift))
    if raw:
        raw.close()
    elapsed = time.time() - started

    rows = []
    for key, pairs in results.items():
        limit, kind = target(key)
        if kind == "bw":
            c_values = [float(c["MB_per_s"]) for c, _ in pairs]
            s_values = [float(s["MB_per_s"]) for _, s in pairs]
            ratios = [s / c for c, s in zip(c_values, s_values)]
            unit = "MB/s"
            ok = statistics.median(ratios) >= limit
            goal = f">= {limit:.2f}"
        else:
            c_values = [float(c["seconds"]) / int(c["ops"]) * 1e9 for c, _ in pairs]
            s_values = [float(s["seconds"]) / int(s["ops"]) * 1e9 for _, s in pairs]
            ratios = [s / c for c, s in zip(c_values, s_values)]
            unit = "ns/op"
            ok = statistics.median(ratios) <= limit
            goal = f"<= {limit:.2f}"
        rows.append((key.replace("scenario=", ""), statistics.median(c_values), statistics.median(s_values), unit,
                     statistics.median(ratios), min(ratios), max(ratios), len(ratios), goal, "ok" if ok else "MISS"))

    header = ("case", "C (median)", "Swift (median)", "unit", "Swift/C median", "min", "max", "rounds", "target", "")
    print()
    print(f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, kernel {platform.release()}, "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {args.rounds} rounds, {elapsed:.0f} s")
    if args.markdown:
        print("| " + " | ".join(header[:-1]) + " | result |")
        print("|" + "---|" * len(header))
        for r in rows:
            print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]} | **{r[4]:.3f}** | {r[5]:.3f} | {r[6]:.3f} | {r[7]} | {r[8]} | {r[9]} |")
    else:
        width = max(len(r[0]) for r in rows) if rows else 10
        print(f"{'case':<{width}}  {'C':>11} {'Swift':>11} {'unit':<5}  {'ratio':>6} {'min':>6} {'max':>6}  target   ")
        for r in rows:
            print(f"{r[0]:<{width}}  {r[1]:>11.1f} {r[2]:>11.1f} {r[3]:<5}  {r[4]:>6.3f} {r[5]:>6.3f} {r[6]:>6.3f}  {r[8]:<8} {r[9]}")
    for key, lines in c_only.items():
        rtts = [float(r["rtt_us"]) for r in lines]
        print(f"{key.replace('scenario=', '')} (C only, the floor): median {statistics.median(rtts):.3f} us per round trip, "
              f"min {min(rtts):.3f}, max {max(rtts):.3f}, {len(rtts)} rounds")
    summary = channel_summary(results, c_only)
    if summary:
        print("\nmessage channel against the message queue and the floor (medians of this run):")
        for line in summary:
            print("  " + line)
    if skipped:
        print(f"\nnot built in this checkout (skipped): {', '.join(skipped)}")

    if not args.no_alloc:
        print("\nallocations per operation (alloc-count):", flush=True)
        counted = subprocess.run([ALLOC_BIN], capture_output=True, text=True)
        print(counted.stdout, end="")
        if counted.returncode != 0:
            failures.append(f"alloc-count: exit {counted.returncode} {counted.stderr.strip()}")

    if failures:
        print("\nFAILURES:")
        for failure in failures:
            print("  " + failure)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

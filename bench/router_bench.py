"""Router overhead: the model server straight vs through `python -m kubeloop.router`, side by side.

    .venv/bin/python bench/router_bench.py [--seconds 15] [--rounds 2] [--work /tmp/kubeloop-bench]

Same model, bodies and load generator as bench/serving_bench.py (RandomForest 100 trees on 20
float columns, V2 single-row bodies, `wrk -t1`). Three set-ups, measured one after the other in an
order that alternates per round:

- direct: wrk -> the stable server;
- router: wrk -> router -> the stable server (table StableOnly);
- router + shadow 100%: the same, every request also copied to a candidate server (same model),
  answers compared; the stable path is what wrk measures;
- router + shadow 100%, candidate niced: the same with the candidate server at nice 19, standing in
  for a candidate with CPUs of its own (in a cluster its pods are not on the router's cores);
- router + shadow 100% to a fixed answer: the candidate is bench/fixed_answer.py, which answers at
  once, so what remains is the router's own work for the copies (send, receive, parse, compare).

Router CPU per request is the router process's user + system time over the run (/proc/<pid>/stat)
divided by the requests wrk completed.

Two layouts. `--layout shared` (the default): every process on both cores, as the OS schedules
them. `--layout pinned`, the nearest this 2-core machine gets to a cluster, where the router and
the candidate do not run on the stable server's CPUs: wrk and the stable server on CPU 0, the router
on CPU 1, and every candidate on CPU 1 under SCHED_IDLE, so that it gets only the CPU time the
router leaves (a candidate with CPUs of its own would take none from the router either). The
direct set-up then has CPU 1 idle; the router's work, and the copies', are on CPU 1.

`--no-idle` holds /dev/cpu_dma_latency at 0 for the run (root only), so idle CPUs poll instead of
halting. On this KVM guest a halted vCPU takes tens of microseconds to wake, and a proxy that
waits on one (the router on its own CPU) pays that on each hop; the option shows the router's own
cost apart from the virtual machine's.

The router runs in standalone mode (KUBELOOP_ROUTING_FILE); switching the table rewrites the file,
which the router re-reads. Prints a Markdown table of medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_bench import PYTHON, REPO, start, train, wrk

POINTS = [("1 row, c=1", 1), ("1 row, c=32", 32)]
SETUPS = ("direct", "router", "shadow", "shadow-niced", "shadow-fixed")
STABLE_PORT, CANDIDATE_PORT, NICED_PORT, FIXED_PORT, ROUTER_PORT = 18000, 18002, 18004, 18006, 18010
CANDIDATES = {"shadow": CANDIDATE_PORT, "shadow-niced": NICED_PORT, "shadow-fixed": FIXED_PORT}


def routing(mode: str, epoch: str, candidate_port: int = CANDIDATE_PORT) -> dict[str, Any]:
    table = {
        "deployment": "bench",
        "model": "bench",
        "epoch": epoch,
        "mode": mode,
        "shadowPercent": 100,
        "shadowQueue": 1024,
        "stable": {"version": 1, "service": "bench-v1"},
        "candidate": {"version": 2, "service": "bench-v2"},
    }
    endpoints = {"bench-v1": [f"127.0.0.1:{STABLE_PORT}"], "bench-v2": [f"127.0.0.1:{candidate_port}"]}
    return {"table": table, "endpoints": endpoints}


def get_json(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        document: dict[str, Any] = json.loads(response.read())
        return document


def set_table(file: Path, mode: str, epoch: str, candidate_port: int = CANDIDATE_PORT) -> None:
    """Rewrite the routing file and wait until the router follows it."""
    file.write_text(json.dumps(routing(mode, epoch, candidate_port)))
    deadline = time.monotonic() + 10
    while get_json(ROUTER_PORT, "/stats")["epoch"] != epoch:
        if time.monotonic() > deadline:
            raise RuntimeError("the router did not pick up the new routing file")
        time.sleep(0.1)


def start_router(work: Path, file: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "operator"),
        "KUBELOOP_ROUTING_FILE": str(file),
        "KUBELOOP_BIND_HOST": "127.0.0.1",
        "KUBELOOP_PORT": str(ROUTER_PORT),
        "KUBELOOP_LOG_LEVEL": "WARNING",
    }
    log = (work / "router.log").open("ab")
    argv = [PYTHON, "-m", "kubeloop.router"]
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if get_json(ROUTER_PORT, "/router/ready")["ready"]:
                return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the router did not start; see {work / 'router.log'}")


def pin(pid: int, cpu: int, *, idle: bool = False) -> None:
    """Every thread of `pid` onto `cpu` (threads started later inherit it), optionally SCHED_IDLE."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpu})
        if idle:
            os.sched_setscheduler(int(task.name), os.SCHED_IDLE, os.sched_param(0))


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(setup: str, work: Path, file: Path, seconds: int, *, epoch: str, router: int) -> dict[str, Any]:
    port = STABLE_PORT if setup == "direct" else ROUTER_PORT
    if setup != "direct":
        mode = "StableOnly" if setup == "router" else "Shadow"
        set_table(file, mode, epoch, CANDIDATES.get(setup, CANDIDATE_PORT))
    results: dict[str, Any] = {}
    for label, connections in POINTS:
        wrk(port, 1, connections, 2, work)  # warm-up
        before = cpu_seconds(router)
        results[label] = wrk(port, 1, connections, seconds, work)
        cpu = (cpu_seconds(router) - before) / (results[label]["rps"] * seconds)
        results[label]["router_cpu_us"] = cpu * 1e6 if setup != "direct" else 0.0
    if setup.startswith("shadow"):
        time.sleep(3)  # let the last copies land
        stats = get_json(ROUTER_PORT, "/stats")
        results["stats"] = {
            "answered": stats["stable"]["requests"],
            "copies": stats["candidate"]["requests"],
            "compared": stats["comparison"]["requests"],
            "agreed": stats["comparison"]["agreed"],
            "rows": stats["comparison"]["rows"],
            "copy errors": stats["comparison"]["candidateErrors"],
            "dropped": stats["comparison"]["dropped"],
        }
    return results


def table(rounds: list[dict[str, dict[str, Any]]]) -> str:
    def median(setup: str, label: str, key: str) -> float:
        return statistics.median(r[setup][label][key] for r in rounds)

    names = {
        "direct": "direct to the server",
        "router": "through the router",
        "shadow": "router + shadow 100%",
        "shadow-niced": "router + shadow 100%, candidate niced",
        "shadow-fixed": "router + shadow 100% to a fixed answer",
    }
    lines = [
        "| point | path | req/s | p50 ms | p99 ms | added p50 ms | req/s vs direct | router CPU µs/req |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, _ in POINTS:
        direct_rps, direct_p50 = median("direct", label, "rps"), median("direct", label, "p50")
        for setup in SETUPS:
            rps, p50, p99, cpu = (median(setup, label, key) for key in ("rps", "p50", "p99", "router_cpu_us"))
            added = "" if setup == "direct" else f"{p50 - direct_p50:+.2f}"
            lines.append(
                f"| {label} | {names[setup]} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {added} "
                f"| {rps / direct_rps:.2f}x | {cpu:.0f} |".replace("| 0 |", "| |")
            )
    lines.append("")
    for label, _ in POINTS:
        plain = median("router", label, "p50")
        for setup in CANDIDATES:
            change = median(setup, label, "p50") / plain - 1
            lines.append(f"- {names[setup]} vs no shadow, stable p50 at {label}: {change:+.0%}")
    for setup in CANDIDATES:
        lines.append(f"- last round's /stats, {names[setup]}: {json.dumps(rounds[-1][setup]['stats'])}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kubeloop-bench"))
    parser.add_argument("--layout", choices=("shared", "pinned"), default="shared")
    parser.add_argument("--no-idle", action="store_true", help="hold /dev/cpu_dma_latency at 0")
    args = parser.parse_args()
    if args.no_idle:  # held while this descriptor stays open, i.e. for the whole run
        latency = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
        os.write(latency, (0).to_bytes(4, sys.byteorder))
    pinned = args.layout == "pinned"
    if pinned:  # wrk and the stable server inherit CPU 0 from here
        os.sched_setaffinity(0, {0})
    args.work.mkdir(parents=True, exist_ok=True)
    run = train(args.work)
    file = args.work / "routing.json"
    file.write_text(json.dumps(routing("StableOnly", "warm-up")))
    load_before = os.getloadavg()[0]
    os.environ["KUBELOOP_POD_NAME"] = "bench-stable"  # the two servers' request logs apart
    stable = start("kubeloop", run, args.work, STABLE_PORT)
    os.environ["KUBELOOP_POD_NAME"] = "bench-candidate"
    candidate = start("kubeloop", run, args.work, CANDIDATE_PORT)
    os.environ["KUBELOOP_POD_NAME"] = "bench-candidate-niced"
    niced = start("kubeloop", run, args.work, NICED_PORT)
    os.setpriority(os.PRIO_PGRP, niced.pid, 19)
    fixed = subprocess.Popen(
        [PYTHON, str(Path(__file__).with_name("fixed_answer.py")), str(FIXED_PORT)], start_new_session=True
    )
    router = start_router(args.work, file)
    if pinned:
        pin(router.pid, 1)
        for process in (candidate, niced, fixed):
            pin(process.pid, 1, idle=True)
    try:
        rounds = []
        for index in range(args.rounds):
            order = SETUPS if index % 2 == 0 else tuple(reversed(SETUPS))
            epoch = f"r{index}-{{}}"
            rounds.append(
                {
                    s: measure(s, args.work, file, args.seconds, epoch=epoch.format(s), router=router.pid)
                    for s in order
                }
            )
            print(f"round {index + 1}: {json.dumps(rounds[-1])}", file=sys.stderr)
    finally:
        for process in (router, fixed, niced, candidate, stable):
            stop(process)
    print(table(rounds))
    print(f"Layout: {args.layout}{', idle CPUs polling (cpu_dma_latency 0)' if args.no_idle else ''}")
    print(f"Load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

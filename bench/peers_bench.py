"""Our model server, the floor, MLServer and KServe side by side, in one run, on the same RandomForest.

    .venv/bin/python bench/peers_bench.py [--seconds 20] [--rounds 1] [--quiet 0.5] [--retries 2]
        [--peers mlserver,mlserver-inline,kserve] [--work DIR]

Reuses bench/serving_bench.py: the trainer's model.onnx (RandomForest, 100 trees, depth 10, 20
features), our server and the floor started as there, and the same wrk load generator (its own
process, -t1, on loopback). The peers come from bench/peers_setup.py (their own venvs, the same
pipeline as a joblib file). A peer that cannot be installed or started is reported with its error
and the others still run.

Every server is one worker, a subprocess on 127.0.0.1, and all of them are up for the whole run:
the points are interleaved (each point runs every server in turn, the order rotating from point to
point) so that a burst of load from other work on the machine falls on all of them, not on one.
Before each point the script waits (up to --quiet-wait s) until the other processes use less than
--quiet cores, and it reports what they used during every measurement: /proc/stat busy time minus
the server's, wrk's and its own; a measurement they disturbed beyond --quiet is taken again (up to
--retries times) and the least disturbed one kept. Each measurement: a 3 s warm-up at the point,
then --seconds. RSS: the peak of all of a server's processes, sampled every 0.5 s (MLServer forks a worker).
Every server gets the same bytes: V2 bodies with one FP32 tensor per column and
`"parameters": {"content_type": "pd"}`, which the peers need to build a DataFrame.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peers_setup as ps
import serving_bench as sb

NAMES = {"kubeloop": "kubeloop (metrics + 100% logging)", "floor": "floor (bare FastAPI + ORT)",
         "mlserver": "MLServer (1 inference worker)", "mlserver-inline": "MLServer (parallel_workers=0)",
         "kserve": "KServe (kserve.Model, sklearn)"}  # fmt: skip
HZ = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- the machine's CPU and the servers' processes ------------------------------------------------------


def sessions() -> dict[int, tuple[int, int]]:
    """Session id -> (RSS kB, CPU ticks) summed over its live processes."""
    totals: dict[int, tuple[int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # fields[i] is field i + 3 of proc(5)
        except OSError:
            continue
        rss, cpu = totals.get(int(fields[3]), (0, 0))
        totals[int(fields[3])] = (rss + int(fields[21]) * PAGE_KB, cpu + int(fields[11]) + int(fields[12]))
    return totals


def busy_ticks() -> int:
    """CPU ticks spent by everything on the machine (not idle, not waiting for I/O)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values) - values[3] - values[4]


def own_ticks() -> int:
    """This process (its sampler thread included) and its waited children (wrk)."""
    this, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((this.ru_utime + this.ru_stime + children.ru_utime + children.ru_stime) * HZ)


class RssSampler(threading.Thread):
    def __init__(self, processes: dict[str, subprocess.Popen[bytes]]) -> None:
        super().__init__(daemon=True)
        self.processes, self.peak_kb, self.done = processes, dict.fromkeys(processes, 0), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            totals = sessions()
            for name, process in self.processes.items():
                self.peak_kb[name] = max(self.peak_kb[name], totals.get(process.pid, (0, 0))[0])


def others_cores(seconds: float = 2.0) -> float:
    """Cores used by other processes now (our servers idle meanwhile)."""
    busy, own = busy_ticks(), own_ticks()
    time.sleep(seconds)
    return max(0.0, (busy_ticks() - busy - (own_ticks() - own)) / HZ / seconds)


def wait_quiet(limit: float, patience: float) -> float:
    deadline, used = time.monotonic() + patience, others_cores()
    while limit and used >= limit and time.monotonic() < deadline:
        time.sleep(5)
        used = others_cores()
    return used


# -- measuring -----------------------------------------------------------------------------------------


def run_point(name: str, process: subprocess.Popen[bytes], point: tuple[str, int, int], args: Any) -> dict:
    """One wrk measurement after a warm-up, with the CPU the server and the rest of the machine used."""
    _, rows, connections = point
    port, body = ps.PORTS[name], ps.payload(rows)
    sb.wrk(port, rows, connections, 3, args.work, payload=body)  # warm-up
    started, busy, own, server = time.monotonic(), busy_ticks(), own_ticks(), sessions()[process.pid][1]
    result = sb.wrk(port, rows, connections, args.seconds, args.work, payload=body)
    elapsed = time.monotonic() - started
    server = sessions()[process.pid][1] - server
    others = busy_ticks() - busy - (own_ticks() - own) - server
    return result | {"server_cores": server / HZ / elapsed, "others": max(0.0, others / HZ / elapsed)}


def start_all(names: list[str], starters: dict[str, Callable[[], Any]]) -> tuple[dict, dict]:
    processes, errors = {}, {}
    for name in names:
        try:
            processes[name] = starters[name]()
        except (ps.Unavailable, RuntimeError, OSError) as error:
            errors[name] = str(error)
    return processes, errors


def least_disturbed(
    name: str, process: subprocess.Popen[bytes], point: tuple[str, int, int], args: Any
) -> dict:
    """A measurement during which other processes used more than --quiet cores is taken again (after
    waiting for quiet), up to --retries times; the one they disturbed least is kept."""
    attempts = [run_point(name, process, point, args)]
    while args.quiet and attempts[-1]["others"] > args.quiet and len(attempts) <= args.retries:
        wait_quiet(args.quiet, args.quiet_wait)
        attempts.append(run_point(name, process, point, args))
    return min(attempts, key=lambda a: a["others"]) | {"attempts": len(attempts)}


def measure_all(processes: dict[str, subprocess.Popen[bytes]], args: Any) -> tuple[dict, dict, list]:
    """Every point on every server, `args.rounds` times; returns runs, errors and the quiet figures."""
    runs: dict[str, dict[str, list[dict]]] = {n: {p[0]: [] for p in sb.POINTS} for n in processes}
    errors: dict[str, str] = {}
    quiet: list[float] = []
    for step in range(args.rounds * len(sb.POINTS)):
        point = sb.POINTS[step % len(sb.POINTS)]
        quiet.append(wait_quiet(args.quiet, args.quiet_wait))
        order = [n for n in processes if n not in errors]
        for name in order[step % len(order) :] + order[: step % len(order)]:
            try:
                runs[name][point[0]].append(least_disturbed(name, processes[name], point, args))
                print(f"{name} {point[0]}: {runs[name][point[0]][-1]}", flush=True)
            except (RuntimeError, OSError, subprocess.CalledProcessError, KeyError) as error:
                errors[name] = f"{type(error).__name__} at {point[0]}: {error}"
    return runs, errors, quiet


def medians(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    return {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in runs.items()}


# -- reporting -----------------------------------------------------------------------------------------


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| point | server | req/s | rows/s | p50 ms | p99 ms | vs floor | kubeloop / this "
             "| others' CPU |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    ours, floor = results.get("kubeloop"), results.get("floor")
    for label, rows, _ in sb.POINTS:
        for name, result in results.items():
            point = result[label]
            vs_floor = f"{point['rps'] / floor[label]['rps']:.2f}x" if floor else "-"
            ratio = f"{ours[label]['rps'] / point['rps']:.2f}x" if ours else "-"
            lines.append(f"| {label} | {NAMES[name]} | {point['rps']:,.0f} | {point['rps'] * rows:,.0f} "
                         f"| {point['p50']:.2f} | {point['p99']:.2f} | {vs_floor} | {ratio} "
                         f"| {point['others']:.2f} |")  # fmt: skip
    rss = ", ".join(f"{NAMES[n]} {r['rss']:.0f} MB" for n, r in results.items())
    return "\n".join([*lines, "", f"Peak RSS (all of the server's processes): {rss}"])


def targets(results: dict[str, dict[str, Any]]) -> list[str]:
    ours, floor = results.get("kubeloop"), results.get("floor")
    if not ours:
        return ["kubeloop did not run: no target can be judged"]
    one, met = "1 row, c=32", {True: "met", False: "NOT met"}
    lines = []
    if floor:
        ratio = ours[one]["rps"] / floor[one]["rps"]
        lines.append(f"1 row c=32 >= 0.8x floor: {ratio:.2f}x, {met[ratio >= 0.8]}")
    if mlservers := [r for n, r in results.items() if n.startswith("mlserver")]:
        ratio = ours[one]["rps"] / max(r[one]["rps"] for r in mlservers)
        lines.append(
            f"1 row c=32 >= 20x MLServer (its faster configuration): {ratio:.1f}x, {met[ratio >= 20]}"
        )
    best = max(ours[label]["rps"] * 100 for label in ("100 rows, c=1", "100 rows, c=32"))
    lines.append(f"100-row requests >= 100,000 rows/s: {best:,.0f}, {met[best >= 100_000]}")
    one_p99, hundred_p99 = ours["1 row, c=1"]["p99"], ours["100 rows, c=1"]["p99"]
    lines.append(f"p99 at c=1 <= 2 ms: 1 row {one_p99:.2f} ms ({met[one_p99 <= 2]}), "
                 f"100 rows {hundred_p99:.2f} ms ({met[hundred_p99 <= 2]})")  # fmt: skip
    lines.append(f"RSS <= 200 MB: {ours['rss']:.0f} MB, {met[ours['rss'] <= 200]}")
    return lines


def loads(values: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="per measurement (the issue's figure: 20)")
    parser.add_argument("--rounds", type=int, default=1, help="measurements per point and server (median)")
    parser.add_argument(
        "--peers", default=",".join(ps.PEERS), help=f"comma-separated, of {','.join(ps.PEERS)}"
    )
    parser.add_argument(
        "--quiet", type=float, default=0.5, help="cores other processes may use (0: don't wait)"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=300, help="longest wait for --quiet, per point (s)"
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="repeats of a measurement disturbed beyond --quiet"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/kubeloop-peers-bench"))
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    if unknown := set(peers) - set(ps.PEERS):
        parser.error(f"unknown peer(s) {sorted(unknown)}; choose from {sorted(ps.PEERS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    run = sb.train(args.work)
    model, fidelity = ps.sklearn_model(args.work, run)
    print(f"joblib pipeline vs model.onnx on the test split: {fidelity}")
    starters: dict[str, Callable[[], Any]] = {
        kind: (lambda kind=kind: sb.start(kind, run, args.work, ps.PORTS[kind]))
        for kind in ("kubeloop", "floor")
    }
    launches = {"mlserver": ps.mlserver_launch, "kserve": ps.kserve_launch}
    for peer in peers:
        launch, venv = launches[ps.PEERS[peer]], ps.PEERS[peer]
        starters[peer] = lambda p=peer, launch=launch: ps.start_peer(
            p, launch(model, args.work, p), args.work
        )
        try:
            print(f"{peer}: {ps.versions(ps.peer_python(venv), ps.VENV_SPECS[venv].report)}")
        except ps.Unavailable as error:
            print(f"{peer}: {error}")
    processes, errors = start_all(list(starters), starters)
    sampler = RssSampler(processes)
    sampler.start()
    try:
        answers = {
            n: {r: ps.labels(ps.infer(ps.PORTS[n], ps.payload(r))) for r in (1, 100)} for n in processes
        }
        load_before, started = os.getloadavg(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        runs, failures, quiet = measure_all(processes, args)
        errors |= failures
        rss = {n: max(sampler.peak_kb[n] / 1024, sb.rss_mb(p.pid)) for n, p in processes.items()}
    finally:
        sampler.done.set()
        for process in processes.values():
            ps.stop(process)
    results = {n: medians(runs[n]) | {"rss": rss[n]} for n in processes if n not in errors}
    (args.work / "results.json").write_text(json.dumps({"runs": runs, "errors": errors, "quiet": quiet}))
    print(f"\nstarted {started}, {args.seconds} s per measurement, {args.rounds} round(s); load average "
          f"(1/5/15 min) before {loads(load_before)}, after {loads(os.getloadavg())}; other processes' "
          f"cores before each point: {', '.join(f'{q:.2f}' for q in quiet)}\n")  # fmt: skip
    print(table(results))
    for name, reason in errors.items():
        print(f"\n{NAMES[name]} did not run: {reason}")
    for name, answer in answers.items():
        if answer != answers.get("kubeloop", answer):
            print(f"\n{NAMES[name]} predicted other labels than kubeloop: {answer}")
    print("\n" + "\n".join(targets(results)))


if __name__ == "__main__":
    main()

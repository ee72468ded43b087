"""One container of a pod as a local process: start, exit, restart with back-off, probes, status."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.infra.localnode.kubeapi import now as wall_now
from tests.infra.localnode.podspec import Obj
from tests.infra.localnode.probes import ExecRunner, ProbeState, now, probe_once
from tests.infra.processes import tail

LAUNCHER = str(Path(__file__).with_name("launch.py"))
MAX_MESSAGE = 4096
BACKOFF_START, BACKOFF_MAX = 1.0, 30.0


@dataclass
class Launch:
    """Everything needed to (re)start the container process."""

    argv: list[str]
    env: dict[str, str]
    mounts: list[Obj]
    cwd: str | None
    python: str
    netns: str
    keep: list[str] = field(default_factory=list)  # host paths the process needs, never shadowed


def exit_code(returncode: int) -> int:
    """Popen reports a signal as -N; a container runtime reports 128+N."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class ContainerRun:
    spec: Obj
    directory: Path
    launch: Launch | None = None
    restart_count: int = 0
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    process: subprocess.Popen[bytes] | None = None
    restart_at: float = 0.0
    backoff: float = BACKOFF_START
    probes: dict[str, ProbeState] = field(default_factory=dict)
    reaped: bool = False

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def log_path(self) -> Path:
        return self.directory / "logs" / f"{self.name}.log"

    @property
    def message_path(self) -> Path:
        return self.directory / "termination" / self.name

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def terminated(self) -> Obj | None:
        return self.state.get("terminated")

    def wait_with(self, reason: str, message: str = "") -> None:
        self.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}

    def start(self) -> None:
        assert self.launch is not None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.message_path.parent.mkdir(parents=True, exist_ok=True)
        self.message_path.write_bytes(b"")
        message_target = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        mounts = [*self.launch.mounts, {"source": str(self.message_path), "target": message_target}]
        plan = {
            "argv": self.launch.argv,
            "env": self.launch.env,
            "mounts": mounts,
            "cwd": self.launch.cwd,
            "netns": self.launch.netns,
            "keep": self.launch.keep,
            "terminationMessage": str(self.message_path),
        }
        plan_file = self.directory / "plans" / f"{self.name}.json"
        plan_file.parent.mkdir(parents=True, exist_ok=True)
        plan_file.write_text(json.dumps(plan))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    self.launch.python,
                    LAUNCHER,
                    str(plan_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started, self.ready, self.reaped = True, False, False
        self.state = {"running": {"startedAt": wall_now()}}
        self.probes = {
            kind: ProbeState(self.spec[key], now())
            for kind, key in (
                ("startup", "startupProbe"),
                ("liveness", "livenessProbe"),
                ("readiness", "readinessProbe"),
            )
            if self.spec.get(key)
        }

    def reap(self) -> bool:
        """Record the exit if the process has ended; True only the first time for each run."""
        if self.process is None or self.process.poll() is None or self.reaped:
            return False
        self.reaped = True
        code = exit_code(self.process.returncode)
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": self.state.get("running", {}).get("startedAt", wall_now()),
            "finishedAt": wall_now(),
            "containerID": self.container_id,
        }
        message = self._termination_message(code)
        if message:
            terminated["message"] = message
        self.state, self.ready, self.started = {"terminated": terminated}, False, False
        return True

    def _termination_message(self, code: int) -> str:
        try:
            message = self.message_path.read_bytes()[:MAX_MESSAGE].decode("utf-8", "replace")
        except FileNotFoundError:
            message = ""
        if not message and code != 0 and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = tail(self.log_path, 80)[-2048:]
        return message

    def schedule_restart(self) -> None:
        """Keep the last run in lastState and wait out the back-off (CrashLoopBackOff)."""
        self.last_state = dict(self.state)
        self.restart_at = now() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        self.restart_count += 1
        self.wait_with(
            "CrashLoopBackOff", f"back-off {self.backoff / 2:.0f}s restarting container {self.name}"
        )

    def stop(self, grace: float) -> None:
        """SIGTERM the container's process group, SIGKILL after `grace`; Popen keeps the exit status."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait)
                return

    @property
    def container_id(self) -> str:
        return f"local://{self.process.pid}" if self.process else ""

    def run_probes(self, pod_ip: str, run_exec: ExecRunner) -> str | None:
        """Advance due probes; returns 'liveness' when the container must be killed."""
        at = now()
        startup = self.probes.get("startup")
        if startup and startup.result is not True:
            if startup.due(at):
                startup.record(probe_once(startup.probe, pod_ip, self.spec, run_exec), at)
            return "liveness" if startup.result is False else None
        liveness = self.probes.get("liveness")
        if liveness and liveness.due(at):
            liveness.record(probe_once(liveness.probe, pod_ip, self.spec, run_exec), at)
            if liveness.result is False:
                return "liveness"
        readiness = self.probes.get("readiness")
        if readiness is None:
            self.ready = True
        elif readiness.due(at):
            readiness.record(probe_once(readiness.probe, pod_ip, self.spec, run_exec), at)
            self.ready = bool(readiness.result)
        return None

    def run_exec(self, command: list[str], timeout: float) -> int:
        """An exec probe: the command in a namespace with the container's mounts."""
        assert self.launch is not None
        plan = {
            "argv": command,
            "env": self.launch.env,
            "mounts": self.launch.mounts,
            "cwd": self.launch.cwd,
            "netns": self.launch.netns,
            "keep": self.launch.keep,
        }
        try:
            result = subprocess.run(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    self.launch.python,
                    LAUNCHER,
                    "/dev/stdin",
                ],
                input=json.dumps(plan).encode(),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return 1
        return result.returncode

    def status(self, image: str) -> Obj:
        return {
            "name": self.name,
            "image": image,
            "imageID": f"local://{image}",
            "containerID": self.container_id,
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }


def python() -> str:
    return sys.executable

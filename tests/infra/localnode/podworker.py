"""One pod's life on the local node, in one thread: sandbox, init containers, containers, status."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from kubernetes.client.rest import ApiException

from tests.infra.localnode.containers import ContainerRun, Launch
from tests.infra.localnode.images import ImageMap, ImageNotMapped
from tests.infra.localnode.kubeapi import KubeApi, now, retry
from tests.infra.localnode.podspec import ConfigError, Obj, container_env, expand, volume_files
from tests.infra.localnode.probes import now as monotonic

log = logging.getLogger("localnode.pod")
TICK = 0.2
# What a container process needs from the host and no volume may hide: the interpreter, the
# virtualenv and the project it runs (an editable install).
KEEP = sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, Path(__file__).parents[3])})


class PodWorker(threading.Thread):
    def __init__(
        self,
        *,
        pod: Obj,
        api: KubeApi,
        images: ImageMap,
        directory: Path,
        network: tuple[str, str],
        base_env: dict[str, str],
        release_network: Any,
    ) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.pod, self.api, self.images, self.directory = pod, api, images, directory
        (self.pod_ip, self.netns), self.release_network = network, release_network
        self.base_env = {**base_env, "KUBELOOP_BIND_HOST": self.pod_ip, "HOSTNAME": meta["name"]}
        self.wake = threading.Event()
        self.gone = False
        spec = pod["spec"]
        self.policy = spec.get("restartPolicy", "Always")
        self.init_runs = [ContainerRun(c, directory) for c in spec.get("initContainers") or []]
        self.runs = [ContainerRun(c, directory) for c in spec["containers"]]
        self.conditions: dict[str, Obj] = {}
        self.phase = "Pending"
        self.start_time = now()
        self.published: Obj | None = None
        self._condition("Initialized", False)

    # -- events from the agent ------------------------------------------------------------------
    def update(self, pod: Obj) -> None:
        self.pod = pod
        self.wake.set()

    def vanish(self) -> None:
        """The pod object is gone from the API: stop everything now."""
        self.gone = True
        self.wake.set()

    @property
    def deleting(self) -> bool:
        return self.gone or bool(self.pod["metadata"].get("deletionTimestamp"))

    # -- the life ---------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            if self._prepare() and self._run_init_containers():
                self._run_containers()
            while not self.deleting:
                self.wake.wait(1.0)
                self.wake.clear()
        except Exception:
            log.exception("pod %s failed in the agent", self.name)
        finally:
            self._shut_down()

    @property
    def name(self) -> str:
        meta = self.pod["metadata"]
        return f"{meta['namespace']}/{meta['name']}"

    def _prepare(self) -> bool:
        self._condition("PodScheduled", True)
        for run in self.init_runs + self.runs:
            try:
                self.images.runtime(run.spec["image"])
            except ImageNotMapped as error:
                run.wait_with("ImageNotMapped", str(error))
                self._publish()
                return False
        while not self.deleting:
            try:
                mounts = self._volumes()
                for run in self.init_runs + self.runs:
                    run.launch = self._launch(run.spec, mounts)
                break
            except ConfigError as error:
                for run in self.init_runs + self.runs:
                    run.wait_with("CreateContainerConfigError", str(error))
                self._publish()
                self.wake.wait(1.0)
                self.wake.clear()
        self._condition("PodReadyToStartContainers", True)
        return not self.deleting

    def _volumes(self) -> dict[str, Path]:
        """Write every volume's files under the pod directory; name -> host directory."""
        paths = {}
        tokens = lambda ns, sa, aud, secs: self.api.service_account_token(ns, sa, aud, secs, self.pod)  # noqa: E731
        for volume in self.pod["spec"].get("volumes") or []:
            path = self.directory / "volumes" / volume["name"]
            files = volume_files(self.pod, volume, lambda *a: retry(lambda: self.api.get(*a)), tokens)
            if files is not None and path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True, exist_ok=True)
            for relative, content in (files or {}).items():
                target = path / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            paths[volume["name"]] = path
        return paths

    def _launch(self, container: Obj, volumes: dict[str, Path]) -> Launch:
        env = container_env(self.pod, container, lambda *a: retry(lambda: self.api.get(*a)), self.base_env)
        command = [expand(part, env) for part in container.get("command") or []]
        args = [expand(part, env) for part in container.get("args") or []]
        argv = self.images.argv(container["image"], command, args, env.get("PATH", ""))
        mounts = []
        for mount in container.get("volumeMounts") or []:
            if mount["name"] not in volumes:
                raise ConfigError(f"volumeMount {mount['name']!r} names no volume of the pod")
            source = volumes[mount["name"]] / expand(mount.get("subPath", ""), env)
            mounts.append(
                {"source": str(source), "target": mount["mountPath"], "readOnly": bool(mount.get("readOnly"))}
            )
        return Launch(argv, env, mounts, container.get("workingDir"), self.images.python, self.netns, KEEP)

    def _run_init_containers(self) -> bool:
        for run in self.init_runs:
            while not self.deleting:
                if not run.running and monotonic() >= run.restart_at:
                    run.start()
                    self._publish()
                self._wait_tick()
                if run.reap():
                    if run.terminated and run.terminated["exitCode"] == 0:
                        self._publish()
                        break
                    if self.policy == "Never":
                        self.phase = "Failed"
                        self._publish()
                        return False
                    run.schedule_restart()
                self._publish()
            if self.deleting:
                return False
        self._condition("Initialized", True)
        return True

    def _run_containers(self) -> None:
        for run in self.runs:
            run.start()
        self.phase = "Running"
        self._publish()
        while not self.deleting:
            for run in self.runs:
                self._tend(run)
            self.phase = self._phase()
            self._publish()
            if self.phase in ("Succeeded", "Failed"):
                return
            self._wait_tick()

    def _tend(self, run: ContainerRun) -> None:
        if run.running and run.run_probes(self.pod_ip, run.run_exec) == "liveness":
            log.info("pod %s container %s failed its liveness probe; restarting", self.name, run.name)
            run.stop(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
        if run.reap() and self._restarts(run):
            run.schedule_restart()
        if run.state.get("waiting") and run.restart_at and monotonic() >= run.restart_at:
            run.restart_at = 0.0
            run.start()

    def _restarts(self, run: ContainerRun) -> bool:
        code = run.terminated["exitCode"] if run.terminated else 0
        return self.policy == "Always" or (self.policy == "OnFailure" and code != 0)

    def _phase(self) -> str:
        if any(run.running or run.state.get("waiting") for run in self.runs):
            return "Running"
        codes = [run.terminated["exitCode"] for run in self.runs if run.terminated]
        return "Succeeded" if all(code == 0 for code in codes) else "Failed"

    def _wait_tick(self) -> None:
        self.wake.wait(TICK)
        self.wake.clear()

    def _shut_down(self) -> None:
        grace = float(
            self.pod["metadata"].get("deletionGracePeriodSeconds")
            or self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        )
        for run in self.init_runs + self.runs:
            run.stop(0 if self.gone else grace)
            run.reap()
            if run.terminated is None and run.state.get("waiting"):
                run.state = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown"}}
        self.release_network(self.pod_ip, self.netns)
        if not self.gone:
            if self.phase not in ("Succeeded", "Failed"):
                self.phase = self._phase() if all(r.terminated for r in self.runs) else "Failed"
            self._publish()
            retry(lambda: self.api.finalize_pod(self.pod))
        shutil.rmtree(self.directory / "volumes", ignore_errors=True)

    # -- status -------------------------------------------------------------------------------------
    def _condition(self, kind: str, value: bool) -> None:
        status = "True" if value else "False"
        if self.conditions.get(kind, {}).get("status") != status:
            self.conditions[kind] = {"type": kind, "status": status, "lastTransitionTime": now()}

    def _status(self) -> Obj:
        ready = self.phase == "Running" and all(run.ready for run in self.runs)
        self._condition("ContainersReady", ready)
        self._condition("Ready", ready)
        return {
            "phase": self.phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
            "conditions": list(self.conditions.values()),
            "initContainerStatuses": [run.status(run.spec["image"]) for run in self.init_runs],
            "containerStatuses": [run.status(run.spec["image"]) for run in self.runs],
        }

    def _publish(self) -> None:
        status = self._status()
        if status == self.published or self.gone:
            return
        try:
            retry(lambda: self.api.patch_pod_status(self.pod, status))
            self.published = status
        except ApiException as error:
            if error.status == 404:
                self.gone = True
            else:
                log.warning("pod %s: status update failed: %s", self.name, error.reason)

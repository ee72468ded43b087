"""The objects a ModelDeployment owns, all with deterministic names:

- per active version N: Deployment + Service `<mdep>-v<N>` (model servers), optional HPA and
  PodDisruptionBudget of the same name;
- the router: Deployment + Service `<mdep>` (the stable entry point), its ServiceAccount, Role and
  RoleBinding `<mdep>-router` (read its ConfigMap and the backends' EndpointSlices, nothing else),
  and the routing ConfigMap `<mdep>-routing`.

Pods carry the model, version, deployment and component (server or router) labels. The
stable/candidate role is a label on the Deployment and Service only: a role in the pod template
would restart a candidate's pods at the moment it is promoted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubeloop.api.v1alpha1 import ModelDeploymentSpec
from kubeloop.contracts.routing import ROUTER_PORT, ROUTING_KEY, RoutingTable
from kubeloop.contracts.serving import DEFAULT_PORT
from kubeloop.planning.workloads import WorkloadSettings, container, labels_for, owned, pod_spec, store_env

Obj = dict[str, Any]
DEPLOYMENT_LABEL = "kubeloop.io/deployment"
MODEL_LABEL = "kubeloop.io/model"
VERSION_LABEL = "kubeloop.io/version"
ROLE_LABEL = "kubeloop.io/role"
COMPONENT = "app.kubernetes.io/component"
SERVICE_PORT = 80  # the router Service: http://<mdep>.<ns>.svc
SHUTDOWN_DELAY_SECONDS = 5  # unready but still answering while routers drop the pod


@dataclass(frozen=True)
class ServedVersion:
    """What a model-server Deployment needs to know about its ModelVersion."""

    number: int
    model_uri: str
    sha256: str
    card_uri: str


def version_child_name(mdep: str, number: int) -> str:
    return f"{mdep}-v{number}"


def routing_name(mdep: str) -> str:
    return f"{mdep}-routing"


def router_account_name(mdep: str) -> str:
    return f"{mdep}-router"


def endpoint(mdep: Obj) -> str:
    meta = mdep["metadata"]
    return f"http://{meta['name']}.{meta['namespace']}.svc"


def _probe(path: str, port: int, period: int, failures: int) -> Obj:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "failureThreshold": failures,
            "timeoutSeconds": 2}  # fmt: skip


def _pod_name_env() -> Obj:
    return {"name": "KUBELOOP_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}


def _server_env(mdep: Obj, spec: ModelDeploymentSpec, version: ServedVersion, settings: WorkloadSettings
                ) -> list[Obj]:  # fmt: skip
    values = {
        "KUBELOOP_MODEL_NAME": spec.model,
        "KUBELOOP_MODEL_VERSION": str(version.number),
        "KUBELOOP_MODEL_URI": version.model_uri,
        "KUBELOOP_MODEL_SHA256": version.sha256,
        "KUBELOOP_CARD_URI": version.card_uri,
        "KUBELOOP_PORT": str(DEFAULT_PORT),
        "KUBELOOP_NAMESPACE": mdep["metadata"]["namespace"],
        "KUBELOOP_DEPLOYMENT": mdep["metadata"]["name"],
        "KUBELOOP_LOG_SAMPLE_RATE": str(spec.logging.sample_rate),
        "KUBELOOP_FEEDBACK": "true" if spec.logging.feedback else "false",
        "KUBELOOP_SHUTDOWN_DELAY_SECONDS": str(SHUTDOWN_DELAY_SECONDS),
    }
    if spec.review_threshold is not None:
        values["KUBELOOP_REVIEW_THRESHOLD"] = str(spec.review_threshold)
    return [{"name": k, "value": v} for k, v in values.items()] + [_pod_name_env(), *store_env(settings)]


def _labels(
    mdep: Obj, spec: ModelDeploymentSpec, component: str, number: int | None = None
) -> dict[str, str]:
    extra = {DEPLOYMENT_LABEL: mdep["metadata"]["name"], MODEL_LABEL: spec.model}
    if number is not None:
        extra[VERSION_LABEL] = str(number)
    return labels_for(component, mdep["metadata"]["name"], extra)


def server_children(mdep: Obj, spec: ModelDeploymentSpec, version: ServedVersion, role: str,
                    settings: WorkloadSettings) -> list[Obj]:  # fmt: skip
    """Deployment + Service (+ HPA, + PDB) of one version's model servers."""
    name = version_child_name(mdep["metadata"]["name"], version.number)
    labels = _labels(mdep, spec, "server", version.number)
    server = container(
        "server", settings.server_image, _server_env(mdep, spec, version, settings),
        resources=spec.resources.model_dump(exclude_none=True), pull_policy=settings.pull_policy,
    )  # fmt: skip
    server["ports"] = [{"name": "http", "containerPort": DEFAULT_PORT}]
    server["readinessProbe"] = _probe("/v2/health/ready", DEFAULT_PORT, 2, 2)
    server["livenessProbe"] = _probe("/v2/health/live", DEFAULT_PORT, 10, 3)
    server["startupProbe"] = _probe("/v2/health/live", DEFAULT_PORT, 2, 60)
    pod = pod_spec([server], restart_policy="Always")
    pod["terminationGracePeriodSeconds"] = SHUTDOWN_DELAY_SECONDS + 25
    deployment_spec: Obj = {
        "selector": {"matchLabels": {k: labels[k] for k in (DEPLOYMENT_LABEL, VERSION_LABEL, COMPONENT)}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }  # fmt: skip
    if spec.autoscaling is None:  # with autoscaling the HPA owns replicas
        deployment_spec["replicas"] = spec.desired_replicas
    meta = {"name": name, "labels": {**labels, ROLE_LABEL: role}}
    children = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": deployment_spec},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
            "selector": deployment_spec["selector"]["matchLabels"],
            "ports": [{"name": "http", "port": DEFAULT_PORT, "targetPort": "http"}]}},
    ]  # fmt: skip
    children += _scaling(meta, spec)
    return [owned(child, mdep) for child in children]


def _scaling(meta: Obj, spec: ModelDeploymentSpec) -> list[Obj]:
    """HPA when autoscaling; a PodDisruptionBudget when more than one pod should stay up."""
    children: list[Obj] = []
    scaling = spec.autoscaling
    if scaling is not None:
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"]}
        metric = {"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": scaling.target_cpu_utilization}}}  # fmt: skip
        children.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
                         "spec": {"scaleTargetRef": target, "minReplicas": scaling.min_replicas,
                                  "maxReplicas": scaling.max_replicas, "metrics": [metric]}})  # fmt: skip
    if wants_disruption_budget(spec):
        selector = {"matchLabels": {k: meta["labels"][k] for k in (DEPLOYMENT_LABEL, VERSION_LABEL)}}
        children.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
                         "spec": {"maxUnavailable": 1, "selector": selector}})  # fmt: skip
    return children


def wants_disruption_budget(spec: ModelDeploymentSpec) -> bool:
    least = spec.autoscaling.min_replicas if spec.autoscaling is not None else spec.desired_replicas
    return least > 1


def router_replicas(spec: ModelDeploymentSpec) -> int:
    """Two routers once the model is served by more than one pod, so the entry point is not the weak spot."""
    return 2 if wants_disruption_budget(spec) else 1


def router_children(mdep: Obj, spec: ModelDeploymentSpec, settings: WorkloadSettings) -> list[Obj]:
    name = mdep["metadata"]["name"]
    labels = _labels(mdep, spec, "router")
    account = router_account_name(name)
    meta = {"name": account, "labels": labels}
    env = [
        {"name": "KUBELOOP_NAMESPACE", "value": mdep["metadata"]["namespace"]},
        {"name": "KUBELOOP_ROUTING_CONFIGMAP", "value": routing_name(name)},
        {"name": "KUBELOOP_PORT", "value": str(ROUTER_PORT)},
        _pod_name_env(),
    ]
    resources = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    router = container(
        "router", settings.router_image, env, pull_policy=settings.pull_policy, resources=resources
    )
    router["ports"] = [{"name": "http", "containerPort": ROUTER_PORT}]
    router["readinessProbe"] = _probe("/router/ready", ROUTER_PORT, 2, 2)
    router["livenessProbe"] = _probe("/router/live", ROUTER_PORT, 10, 3)
    pod = pod_spec([router], restart_policy="Always")
    pod |= {"serviceAccountName": account, "automountServiceAccountToken": True}  # it watches the API
    selector = {DEPLOYMENT_LABEL: name, COMPONENT: "router"}
    namespace = mdep["metadata"]["namespace"]
    read = ["get", "list", "watch"]
    children: list[Obj] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": read},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
         "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
         "spec": {
            "replicas": router_replicas(spec), "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels}, "spec": pod}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels}, "spec": {
            "selector": selector, "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http"}]}},
    ]  # fmt: skip
    if router_replicas(spec) > 1:
        children.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                         "metadata": {"name": name, "labels": labels},
                         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}}})  # fmt: skip
    return [owned(child, mdep) for child in children]


def routing_config_map(mdep: Obj, spec: ModelDeploymentSpec, table: RoutingTable) -> Obj:
    name = mdep["metadata"]["name"]
    routing = table.model_dump(mode="json", by_alias=True, exclude_none=True)
    meta = {"name": routing_name(name), "labels": _labels(mdep, spec, "router")}
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                  "data": {ROUTING_KEY: json.dumps(routing, indent=1)}}  # fmt: skip
    return owned(config_map, mdep)

"""CoreDNS as the cluster's DNS add-on: a Deployment in kube-system behind the Service kube-dns.

It answers `<service>.<namespace>.svc.cluster.local` (and pod and reverse names) from the API server
and nothing else: no `forward`, so no pod query ever leaves the stack. It runs as a restricted pod
(uid 65532, read-only root, no capabilities), so it listens on 1053 behind the Service's port 53.
"""

from __future__ import annotations

from typing import Any

from tests.infra.node.kubelet import CLUSTER_DOMAIN

COREFILE = f""".:1053 {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    reload
}}
"""
LABELS = {"k8s-app": "kube-dns"}
RBAC = "rbac.authorization.k8s.io"


def manifests(image: str, cluster_ip: str) -> list[dict[str, Any]]:
    meta = {"namespace": "kube-system", "labels": LABELS}
    rules = [
        {"apiGroups": [""], "resources": ["services", "pods", "namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", **meta}},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:coredns"}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", **meta},
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", **meta},
         "spec": {"selector": LABELS, "clusterIP": cluster_ip, "ports": [
             {"name": "dns", "port": 53, "targetPort": 1053, "protocol": "UDP"},
             {"name": "dns-tcp", "port": 53, "targetPort": 1053, "protocol": "TCP"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", **meta},
         "spec": {"replicas": 1, "selector": {"matchLabels": LABELS},
                  "template": {"metadata": {"labels": LABELS}, "spec": pod_spec(image)}}},
    ]  # fmt: skip


def pod_spec(image: str) -> dict[str, Any]:
    probe = {"periodSeconds": 2, "timeoutSeconds": 2, "initialDelaySeconds": 1}
    return {
        "serviceAccountName": "coredns",
        "dnsPolicy": "Default",
        "priorityClassName": "system-cluster-critical",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "coredns", "image": image, "imagePullPolicy": "Never",
            "args": ["-conf", "/etc/coredns/Corefile"],
            "ports": [{"containerPort": 1053, "protocol": "UDP", "name": "dns"},
                      {"containerPort": 1053, "protocol": "TCP", "name": "dns-tcp"}],
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, **probe},
            "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, **probe},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
        }],
        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
    }  # fmt: skip

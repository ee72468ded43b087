"""Pure translation of a pod's spec into what a local process needs: env, argv, files.

Nothing here talks to the API server; secrets and config maps arrive through `Lookup`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

Obj = dict[str, Any]
# (kind, namespace, name) -> the object's dict (camelCase keys) or None when it does not exist.
Lookup = Callable[[str, str, str], Obj | None]
# (namespace, serviceAccount, audience, expirationSeconds) -> a signed token
TokenSource = Callable[[str, str, str | None, int], str]

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ConfigError(Exception):
    """A reference the pod needs is missing: the kubelet's CreateContainerConfigError."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand $(VAR) as the kubelet does: `$$` escapes, unknown references stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(replace, text)


def field_value(pod: Obj, path: str) -> str:
    """The subset of downward-API field paths the kubelet supports for env and volumes."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(ip["ip"] for ip in status.get("podIPs") or []),
        "status.hostIPs": ",".join(ip["ip"] for ip in status.get("hostIPs") or []),
    }
    if path in simple:
        return str(simple[path] or "")
    keyed = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if keyed:
        return str((meta.get(keyed.group(1)) or {}).get(keyed.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


def _data(obj: Obj, kind: str) -> dict[str, str]:
    if kind == "Secret":
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def _binary_data(obj: Obj, kind: str) -> dict[str, bytes]:
    raw = obj.get("data") if kind == "Secret" else obj.get("binaryData")
    return {k: base64.b64decode(v) for k, v in (raw or {}).items()}


def _key_ref(ref: Obj, kind: str, namespace: str, lookup: Lookup) -> str | None:
    obj = lookup(kind, namespace, ref["name"])
    optional = bool(ref.get("optional"))
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
    data = _data(obj, kind)
    if ref["key"] not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return data[ref["key"]]


def container_env(pod: Obj, container: Obj, lookup: Lookup, base: Mapping[str, str]) -> dict[str, str]:
    """envFrom, then env (later wins), each value expanded against what came before, as the kubelet does."""
    namespace = pod["metadata"]["namespace"]
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key not in source:
                continue
            obj = lookup(kind, namespace, source[key]["name"])
            if obj is None:
                if source[key].get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{source[key]["name"]}" not found')
            env.update({prefix + k: v for k, v in _data(obj, kind).items()})
    for var in container.get("env") or []:
        value = _env_value(pod, var, lookup, namespace, env)
        if value is not None:
            env[var["name"]] = value
    return env


def _env_value(pod: Obj, var: Obj, lookup: Lookup, namespace: str, env: Mapping[str, str]) -> str | None:
    if "valueFrom" not in var:
        return expand(var.get("value", ""), env)
    source = var["valueFrom"]
    if "secretKeyRef" in source:
        return _key_ref(source["secretKeyRef"], "Secret", namespace, lookup)
    if "configMapKeyRef" in source:
        return _key_ref(source["configMapKeyRef"], "ConfigMap", namespace, lookup)
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    raise ConfigError(f"env {var['name']}: unsupported valueFrom {sorted(source)}")


def volume_files(pod: Obj, volume: Obj, lookup: Lookup, tokens: TokenSource) -> dict[str, bytes] | None:
    """The files a volume holds, by relative path; None for a plain directory (emptyDir, hostPath)."""
    namespace = pod["metadata"]["namespace"]
    if "emptyDir" in volume:
        return None
    if "configMap" in volume or "secret" in volume:
        kind = "ConfigMap" if "configMap" in volume else "Secret"
        source = (
            volume["configMap"]
            if kind == "ConfigMap"
            else {**volume["secret"], "name": volume["secret"]["secretName"]}
        )
        return _object_files(kind, source, namespace, lookup)
    if "downwardAPI" in volume:
        return _downward_files(pod, volume["downwardAPI"])
    if "projected" in volume:
        files: dict[str, bytes] = {}
        for source in volume["projected"].get("sources") or []:
            files.update(_projected_files(pod, source, namespace, lookup, tokens))
        return files
    raise ConfigError(f"volume {volume['name']}: unsupported type {sorted(set(volume) - {'name'})}")


def _object_files(kind: str, source: Obj, namespace: str, lookup: Lookup) -> dict[str, bytes]:
    obj = lookup(kind, namespace, source["name"])
    if obj is None:
        if source.get("optional"):
            return {}
        raise ConfigError(f'{kind.lower()} "{source["name"]}" not found')
    content = {k: v.encode() for k, v in _data(obj, kind).items()} if kind == "ConfigMap" else {}
    content.update(_binary_data(obj, kind))
    items = source.get("items")
    if not items:
        return content
    files = {}
    for item in items:
        if item["key"] not in content:
            if source.get("optional"):
                continue
            raise ConfigError(f"couldn't find key {item['key']} in {kind} {namespace}/{source['name']}")
        files[item["path"]] = content[item["key"]]
    return files


def _downward_files(pod: Obj, source: Obj) -> dict[str, bytes]:
    files = {}
    for item in source.get("items") or []:
        if "fieldRef" not in item:
            raise ConfigError(f"downwardAPI item {item['path']}: only fieldRef is supported")
        files[item["path"]] = field_value(pod, item["fieldRef"]["fieldPath"]).encode()
    return files


def _projected_files(
    pod: Obj, source: Obj, namespace: str, lookup: Lookup, tokens: TokenSource
) -> dict[str, bytes]:
    if "serviceAccountToken" in source:
        token = source["serviceAccountToken"]
        account = pod["spec"].get("serviceAccountName") or "default"
        value = tokens(namespace, account, token.get("audience"), int(token.get("expirationSeconds", 3600)))
        return {token["path"]: value.encode()}
    if "configMap" in source:
        return _object_files("ConfigMap", source["configMap"], namespace, lookup)
    if "secret" in source:
        return _object_files("Secret", source["secret"], namespace, lookup)
    if "downwardAPI" in source:
        return _downward_files(pod, source["downwardAPI"])
    raise ConfigError(f"projected source {sorted(source)} is not supported")

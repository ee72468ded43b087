"""Which side answers a request, and which side (if any) gets a copy of it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from kubeloop.contracts.routing import RoutingMode, RoutingTable

V2, V1 = "/v2/models/", "/v1/models/"


class Side(StrEnum):
    STABLE = "stable"
    CANDIDATE = "candidate"

    @property
    def other(self) -> Side:
        return Side.CANDIDATE if self is Side.STABLE else Side.STABLE


@dataclass(frozen=True, slots=True)
class Decision:
    answer: Side
    copy: Side | None = None


STABLE_ONLY = Decision(Side.STABLE)
STABLE_WITH_COPY = Decision(Side.STABLE, Side.CANDIDATE)
CANDIDATE_ONLY = Decision(Side.CANDIDATE)
CANDIDATE_WITH_COPY = Decision(Side.CANDIDATE, Side.STABLE)


@dataclass(frozen=True, slots=True)
class Splitter:
    """A table's split as probabilities in [0, 1], so a decision is one or two draws."""

    mode: RoutingMode
    answer_candidate: float  # Canary: share answered by the candidate
    copy: float  # Canary: share copied to the other side; Shadow: share copied to the candidate

    @classmethod
    def of(cls, table: RoutingTable) -> Splitter:
        if table.candidate is None or table.mode is RoutingMode.STABLE_ONLY:
            return cls(RoutingMode.STABLE_ONLY, 0.0, 0.0)
        if table.mode is RoutingMode.CANARY:
            return cls(RoutingMode.CANARY, table.weight / 100, table.compare_percent / 100)
        return cls(RoutingMode.SHADOW, 0.0, table.shadow_percent / 100)

    def decide(self, draw: random.Random) -> Decision:
        if self.mode is RoutingMode.STABLE_ONLY:
            return STABLE_ONLY
        copy = self.copy > 0 and draw.random() < self.copy
        if self.mode is RoutingMode.SHADOW:
            return STABLE_WITH_COPY if copy else STABLE_ONLY
        if self.answer_candidate > 0 and draw.random() < self.answer_candidate:
            return CANDIDATE_WITH_COPY if copy else CANDIDATE_ONLY
        return STABLE_WITH_COPY if copy else STABLE_ONLY


def inference_protocol(method: str, path: str) -> str | None:
    """'v2' or 'v1' when the request is a prediction (the only requests split and compared)."""
    if method != "POST":
        return None
    if path.startswith(V2) and path.endswith("/infer"):
        parts = path[len(V2) : -len("/infer")].split("/")
        if (len(parts) == 1 and parts[0]) or (
            len(parts) == 3 and parts[0] and parts[1] == "versions" and parts[2]
        ):
            return "v2"
        return None
    if path.startswith(V1) and path.endswith(":predict"):
        name = path[len(V1) : -len(":predict")]
        if name and "/" not in name:
            return "v1"
    return None

"""Read the targets declared in a dbt project (``config.meta.rfm.targets``) into the IR.

The Python twin of the ``rfm_targets()`` macro: same source (the entity model's meta), but the
full validation of :func:`dbt_rfm.pql.validate` when a graph is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from dbt_rfm.errors import RfmError, did_you_mean
from dbt_rfm.pql.target import Target
from dbt_rfm.pql.validate import validate
from dbt_rfm.spec import GraphSpec


def _rfm_meta(node: Mapping[str, Any]) -> Mapping[str, Any]:
    config_meta = (node.get("config") or {}).get("meta") or {}
    meta = config_meta.get("rfm") if "rfm" in config_meta else (node.get("meta") or {}).get("rfm")
    return meta if isinstance(meta, Mapping) else {}


def raw_targets(manifest: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(entity model name, raw target dict)`` for every declared target, in node order.

    Raises:
        RfmError: ``meta.rfm.targets`` is not a list.
    """
    out: list[tuple[str, Mapping[str, Any]]] = []
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        targets = _rfm_meta(node).get("targets")
        if targets is None:
            continue
        if not isinstance(targets, list):
            raise RfmError(
                f"model '{node['name']}': meta.rfm.targets must be a list of targets, "
                f"found {type(targets).__name__}"
            )
        out.extend((node["name"], t) for t in targets)
    return out


def targets_from_manifest(
    manifest: Mapping[str, Any] | str | Path,
    graph: GraphSpec | None = None,
    scoring_time: datetime | None = None,
) -> tuple[Target, ...]:
    """Every declared target, lifted to :class:`Target` and sorted by name.

    Args:
        manifest: ``manifest.json`` as a dict, or its path (or the ``target/`` folder).
        graph: when given, each target is validated against it (and a boolean static
            column without a cast reads as ``= TRUE``).
        scoring_time: when given (with ``graph``), also checks that anchor spines are not empty.

    Raises:
        RfmError: a malformed or invalid target, or a name declared twice.
    """
    from dbt_rfm.manifest import load_manifest

    loaded = load_manifest(manifest)
    targets: dict[str, Target] = {}
    for entity, raw in raw_targets(loaded):
        target = Target.from_dict(raw, entity=entity, graph=graph)
        if target.name in targets:
            raise RfmError(
                f"target '{target.name}' is declared twice (models "
                f"'{targets[target.name].entity}' and '{entity}')"
            )
        if graph is not None:
            validate(target, graph, scoring_time)
        targets[target.name] = target
    return tuple(targets[name] for name in sorted(targets))


def find_target(targets: tuple[Target, ...], name: str) -> Target:
    """The target called ``name``, or an RfmError suggesting the closest name."""
    for t in targets:
        if t.name == name:
            return t
    names = [t.name for t in targets]
    raise RfmError(
        f"no target '{name}'{did_you_mean(name, names)}; declared targets: "
        f"{', '.join(names) or '(none)'}"
    )

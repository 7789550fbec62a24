"""Judge configuration files the way the corpus tests need: loads, missing feature, or invalid.

``judge_hacf(directory)`` loads an ha.cf (and the haresources beside it) as node ``node`` of
the file, with stub scripts standing in for every heartbeat-class script haresources names
(the real files come without them); ``judge_crm(path)`` and ``judge_cib(path)`` load a crm
file or a CIB.  A refusal whose every problem names a row of ``features.MISSING`` is
"missing-feature"; any other refusal is "invalid".
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hacluster.config import cluster
from hacluster.config.cib_xml import parse_cib_xml
from hacluster.config.cluster import load_cluster
from hacluster.config.features import MISSING
from hacluster.config.resources_crm import parse_resources_crm
from hacluster.errors import ConfigError

AUTHKEYS = "auth 1\n1 sha1 corpus-test-secret\n"


@dataclass
class Judgement:
    verdict: str
    """``loads``, ``missing-feature`` or ``invalid``."""
    features: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def features_named(problems: list[str]) -> tuple[list[str], list[str]]:
    """The MISSING keys the problems name, and the problems that name none (real errors)."""
    keys: set[str] = set()
    other: list[str] = []
    for problem in problems:
        found = [key for key, item in MISSING.items() if f": {item.feature} are not supported" in problem]
        keys.update(found)
        if not found:
            other.append(problem)
    return sorted(keys), other


def _judge(problems: list[str], warnings: list[str]) -> Judgement:
    if not problems:
        return Judgement("loads", warnings=warnings)
    keys, other = features_named(problems)
    verdict = "invalid" if other else "missing-feature"
    return Judgement(verdict, keys, problems, warnings)


def first_node(ha_cf: str) -> str:
    for line in ha_cf.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) > 1 and words[0] == "node":
            return words[1].lower()
    return "corpus-node"


def script_names(haresources: str) -> set[str]:
    """Heartbeat-class script names a haresources file uses (IPaddr forms excluded)."""
    names: set[str] = set()
    text = re.sub(r"\\\n", " ", haresources)
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        for key in words[1:]:
            name = key.split("::")[0]
            if (
                name
                and not re.match(r"^\d{1,3}(\.\d{1,3}){3}", name)
                and name not in ("IPaddr", "IPaddr2", "OCF")
            ):
                names.add(name)
    return names


def judge_hacf(directory: Path, node: str | None = None) -> Judgement:
    """Load ``directory``'s ha.cf as node ``node`` (default: its first node); no host CIB is read."""
    ha_cf = (directory / "ha.cf").read_text()
    work = Path(tempfile.mkdtemp(prefix="corpus-hacf-"))
    saved = cluster.CIB_LOCATIONS
    cluster.CIB_LOCATIONS = (work / "no-such-cib.xml",)  # the host's own CIB must not count
    try:
        (work / "ha.cf").write_text(ha_cf)
        (work / "authkeys").write_text(AUTHKEYS)
        (work / "authkeys").chmod(0o600)
        haresources = directory / "haresources"
        if haresources.exists():
            text = haresources.read_text()
            (work / "haresources").write_text(text)
            resource_d = work / "resource.d"
            resource_d.mkdir()
            for name in script_names(text):
                if "/" in name or name.startswith("."):
                    continue
                stub = resource_d / name
                stub.write_text("#!/bin/sh\nexit 0\n")
                stub.chmod(0o755)
        try:
            config, resources = load_cluster(work / "ha.cf", node or first_node(ha_cf))
        except ConfigError as exc:
            problems = [p.replace(str(work) + "/", "") for p in exc.problems]
            return _judge(problems, [])
        warnings = [w.replace(str(work) + "/", "") for w in [*config.warnings, *resources.warnings]]
        return _judge([], warnings)
    finally:
        cluster.CIB_LOCATIONS = saved
        shutil.rmtree(work, ignore_errors=True)


def _judge_parsed(parse: Callable[..., object], data: str | bytes, name: str) -> Judgement:
    warnings: list[str] = []
    try:
        parse(data, name, warnings=warnings)
    except ConfigError as exc:
        return _judge(exc.problems, warnings)
    return _judge([], warnings)


def judge_crm(path: Path) -> Judgement:
    return _judge_parsed(parse_resources_crm, path.read_text(), path.name)


def judge_cib(path: Path) -> Judgement:
    return _judge_parsed(parse_cib_xml, path.read_bytes(), path.name)

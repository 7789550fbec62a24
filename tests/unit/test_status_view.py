"""The status document, built from a real ``NodeCore`` through the shell's read-only view."""

from __future__ import annotations

import random

import pytest

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core.codec import KeyRing
from hacluster.core.crm import RmSettings
from hacluster.core.effects import Tick
from hacluster.core.ids import LinkName, NodeName
from hacluster.core.node import NodeCore
from hacluster.core.settings import LinkKind, LinkSpec, MembershipSettings
from hacluster.shell.status import nodes_document, resources_document
from hacluster.shell.view import CoreView

N1, N2 = NodeName("n1"), NodeName("n2")


def view_of(text: str) -> CoreView:
    membership = MembershipSettings(
        node=N1,
        nodes=(N1, N2),
        links=(LinkSpec(LinkName("bcast eth0"), LinkKind.BCAST, "eth0"),),
        keyring=KeyRing.single("sha1", b"k"),
        generation=3,
        keepalive_ms=100,
        deadtime_ms=500,
        warntime_ms=300,
        initdead_ms=2000,
    )
    config = parse_resources_crm(text, "t.crm", epoch=1)
    core = NodeCore(membership, RmSettings(node=N1, nodes=(N1, N2)), config, random.Random(0), 0)
    core.start(0)
    return CoreView(core, N1)


@pytest.mark.parametrize("word", ["y", "yes", "on", "true", "1", "Y", "TRUE"])
def test_standby_reads_every_true_word_as_placement_does(word: str) -> None:
    """Regression: ``standby=y`` put the node in standby for placement while status said false."""
    view = view_of(f"primitive vip ocf:hacluster:Dummy\nnode n2 attributes standby={word}\n")
    nodes = {n["name"]: n for n in nodes_document(view, view.statistics(0))}
    assert nodes["n2"]["standby"] is True
    assert nodes["n1"]["standby"] is False
    assert view.config.is_node_standby("n2")


@pytest.mark.parametrize(
    ("meta", "managed"),
    [
        ("", True),
        ("is-managed=n", False),
        ("is-managed=no", False),
        ("maintenance=yes", False),
        ("is-managed=y", True),
    ],
)
def test_managed_reads_one_boolean_parser(meta: str, managed: bool) -> None:
    text = "primitive vip ocf:hacluster:Dummy" + (f" meta {meta}" if meta else "") + "\n"
    resources, _ = resources_document(view_of(text))
    assert resources[0]["managed"] is managed


def test_the_view_hands_out_typed_reports_not_wire_dictionaries() -> None:
    view = view_of("primitive vip ocf:hacluster:Dummy\n")
    report = view.reports()["vip"][N1]
    assert report.state.value == "unknown"
    assert view.reports() is not view.reports(), "a fresh value every time: nothing to mutate"


def test_every_clone_instance_is_its_own_entry_with_its_clone_and_role() -> None:
    text = (
        "property stonith-enabled=false\nprimitive d Dummy\nclone d-clone d\n"
        "primitive db ocf:pacemaker:Stateful\nclone db-clone db meta promotable=true\n"
    )
    resources, _ = resources_document(view_of(text))
    by_id = {r["id"]: r for r in resources}
    assert sorted(by_id) == ["d:0", "d:1", "db:0", "db:1"]
    assert by_id["d:1"]["clone"] == "d-clone"
    assert "role" not in by_id["d:1"]
    assert by_id["db:0"]["clone"] == "db-clone"
    assert by_id["db:0"]["role"] is None  # runs nowhere yet


def test_a_tick_steps_the_resource_manager_only_once_its_deadline_has_come() -> None:
    core = view_of("primitive d ocf:hacluster:Dummy op monitor interval=1s\n")._core
    steps: list[int] = []
    step = core.rm.step

    def counted(now_ms: int) -> list[object]:
        steps.append(now_ms)
        return step(now_ms)  # type: ignore[return-value]

    core.rm.step = counted  # type: ignore[method-assign,assignment]
    due = core.rm.next_deadline_ms()
    core.next_deadline_ms()
    core.handle(Tick(), due - 1)
    assert steps == []
    core.handle(Tick(), due)
    assert steps == [due]

"""Digits that ``str.isdigit`` accepts and ``int`` refuses ("²", "①") never crash the core.

Found by bench/bench_fuzz.py: a fence device with ``pcmk_reboot_retries=²`` crashed
``devices_from_config``, and a pin expiry attribute of "²" crashed ``edits.pins``.
"""

from __future__ import annotations

from dataclasses import replace

from hacluster.config.resources_crm import parse_resources_crm
from hacluster.core import edits
from hacluster.core.fence_devices import devices_from_config

CRM = """\
primitive fence-n1 stonith:fence_dummy params pcmk_host_list=n1 pcmk_reboot_retries=²
primitive svc ocf:heartbeat:Dummy
location cli-prefer-svc svc inf: n1
"""


def test_a_non_ascii_retry_count_keeps_the_default() -> None:
    cfg = parse_resources_crm(CRM)
    (device,) = devices_from_config(cfg)
    assert device.retries == 2


def test_a_non_ascii_pin_expiry_reads_as_no_expiry() -> None:
    cfg = parse_resources_crm(CRM)
    cfg = replace(cfg, node_attributes=(("n1", ((edits.pin_until_attribute("svc"), "²"),)),))
    assert edits.pins(cfg) == [("cli-prefer-svc", "svc", "n1", None)]

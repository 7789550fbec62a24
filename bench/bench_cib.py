#!/usr/bin/env python3
"""Time ``hacrm configure import`` and ``configure show --xml`` on a 200-resource CIB.

Run from the repository root: ``python3 bench/bench_cib.py``.  It builds a CIB of 200
primitives the way Pacemaker writes them (100 two-member groups, each with params, meta,
three ops and a location, colocation and order), then times, as the CLI does them:

- **import**: ``parse_cib_xml`` (defusedxml parse, the walk, the checks) and rendering the
  result as crm text, which is what ``configure import`` sends to the daemon;
- **export**: parsing that crm text and ``render_cib_xml``, what ``configure show --xml`` does.

**Target: import + export ≤ 1 s.**  The figure is the best of several runs in this thread's
CPU time, so other jobs on the shared machine disturb it as little as possible.  It prints
the figures and exits 0: a measurement, not a test.  See bench/README.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hacluster.config.cib_xml import parse_cib_xml, render_cib_xml  # noqa: E402
from hacluster.config.resources_crm import parse_resources_crm, render_resources_crm  # noqa: E402

RESOURCES = 200
TARGET_S = 1.0
REPEAT = 7


def make_cib(resources: int = RESOURCES) -> str:
    groups = []
    constraints = []
    for g in range(resources // 2):
        members = []
        for m in range(2):
            rid = f"r{g:03d}-{m}"
            members.append(
                f"""      <primitive id="{rid}" class="ocf" provider="heartbeat" type="IPaddr2">
        <instance_attributes id="{rid}-ia">
          <nvpair id="{rid}-ip" name="ip" value="10.1.{g % 250}.{m + 1}"/>
          <nvpair id="{rid}-mask" name="cidr_netmask" value="24"/>
          <nvpair id="{rid}-nic" name="nic" value="eth0"/>
        </instance_attributes>
        <meta_attributes id="{rid}-meta">
          <nvpair id="{rid}-stick" name="resource-stickiness" value="100"/>
          <nvpair id="{rid}-thr" name="migration-threshold" value="3"/>
        </meta_attributes>
        <operations>
          <op id="{rid}-start" name="start" interval="0" timeout="20s"/>
          <op id="{rid}-stop" name="stop" interval="0" timeout="20s"/>
          <op id="{rid}-mon" name="monitor" interval="10s" timeout="20s" on-fail="restart"/>
        </operations>
      </primitive>"""
            )
        groups.append(f'    <group id="g{g:03d}">\n' + "\n".join(members) + "\n    </group>")
        constraints.append(
            f'      <rsc_location id="l{g:03d}" rsc="g{g:03d}" node="n{g % 3 + 1}" score="100"/>'
        )
        if g:
            constraints.append(
                f'      <rsc_colocation id="c{g:03d}" rsc="g{g:03d}" with-rsc="g{g - 1:03d}" score="-100"/>'
            )
            constraints.append(
                f'      <rsc_order id="o{g:03d}" first="g{g - 1:03d}" then="g{g:03d}" kind="Optional"/>'
            )
    return f"""<cib validate-with="pacemaker-3.9" admin_epoch="0" epoch="10" num_updates="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="o1" name="stonith-enabled" value="false"/>
      </cluster_property_set>
    </crm_config>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
    <resources>
{chr(10).join(groups)}
    </resources>
    <constraints>
{chr(10).join(constraints)}
    </constraints>
  </configuration>
  <status/>
</cib>
"""


def best_s(run: object, repeat: int = REPEAT) -> float:
    assert callable(run)
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        run()
        times.append(time.thread_time() - start)
    return min(times)


def main() -> int:
    cib = make_cib()
    config = parse_cib_xml(cib, "bench.xml")
    assert len(config.primitives) == RESOURCES, len(config.primitives)
    crm_text = render_resources_crm(config)

    def do_import() -> None:
        render_resources_crm(parse_cib_xml(cib, "bench.xml"))

    def do_export() -> None:
        render_cib_xml(parse_resources_crm(crm_text, "running"))

    def both() -> None:
        do_import()
        do_export()

    import_s, export_s, total_s = best_s(do_import), best_s(do_export), best_s(both)
    wall_start = time.perf_counter()
    both()
    wall_s = time.perf_counter() - wall_start
    print(
        f"CIB of {RESOURCES} primitives: {len(cib) // 1024} KiB of XML, {len(crm_text) // 1024} KiB of crm text"
    )
    print(f"import (CIB -> crm text)       {import_s * 1000:8.1f} ms")
    print(f"export (crm text -> CIB)       {export_s * 1000:8.1f} ms")
    verdict = "meets" if total_s <= TARGET_S else "MISSES"
    print(f"import + export                {total_s * 1000:8.1f} ms  ({verdict} the {TARGET_S:.0f} s target)")
    print(f"import + export, wall clock    {wall_s * 1000:8.1f} ms  (one run, load included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

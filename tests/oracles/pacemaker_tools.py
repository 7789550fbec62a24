"""Ask crmsh and Pacemaker whether they accept a crm file or a CIB: test oracles.

* ``crmsh_verdict(text)`` feeds the text to ``crm configure`` on its standard input, as
  ``cat FILE | crm configure`` does (so ``commit`` and ``end`` lines work as they do for
  operators), against an empty shadow CIB in a temporary ``CIB_shadow_dir``; then it runs
  ``crm_verify`` on the result.  No cluster is needed or touched.
* ``crm_verify_verdict(xml)`` runs ``crm_verify -x`` on a CIB file.

Both ignore what Pacemaker says about the *state* of a cluster that is not running (no
quorum, unclean nodes that cannot be fenced, no fencing device yet): only the
configuration is judged.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_TIMEOUT_S = 120
_STATE_NOISE = re.compile(
    r"lack of quorum|is unclean but cannot be fenced|Unclean nodes will not be fenced|Blind faith"
    r"|no STONITH resources have been defined|disable STONITH with the stonith-enabled option"
    r"|Clusters with shared data need STONITH|crm_verify: Errors found during check|"
    r"crm_verify: Warnings found during check|-V may provide more details|commit forced"
    r"|Call cib_replace failed|resource start-up disabled"
    # agents this machine lacks (drbd, mysql, percona …): about the machine, not the file
    r"|got no meta-data, does this RA exist|no such resource agent"
    r'|parameter "[^"]*" is not known'  # judged against metadata, which a missing agent lacks
)


@dataclass(frozen=True)
class ToolVerdict:
    accepted: bool
    output: str

    def errors(self) -> list[str]:
        return [line for line in self.output.splitlines() if _is_error(line)]


def _is_error(line: str) -> bool:
    lowered = line.lower()
    if _PACEMAKER_WARNING.search(line):
        return False  # crmsh prints crm_verify's warnings at its ERROR level
    return ("error" in lowered or "traceback" in lowered) and not _STATE_NOISE.search(line)


_PACEMAKER_WARNING = re.compile(r"\(\w+\)\s+warning:")


def tools_available() -> str | None:
    """None when crmsh and crm_verify are installed, else what is missing."""
    missing = [tool for tool in ("crm", "crm_verify", "crm_shadow") if shutil.which(tool) is None]
    if missing:
        return f"{' '.join(missing)} missing; install crmsh and pacemaker-cli-utils (scripts/install-deps)"
    return None


def _env(shadow_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIB_")}
    env.update(CIB_shadow_dir=str(shadow_dir), CIB_shadow="oracle", TERM="dumb", LC_ALL="C.UTF-8")
    return env


def crmsh_verdict(text: str) -> ToolVerdict:
    """crmsh's (and then crm_verify's) verdict on crm configure text."""
    work = Path(tempfile.mkdtemp(prefix="crmsh-oracle-"))
    try:
        env = _env(work)
        created = subprocess.run(
            ["crm_shadow", "--batch", "--force", "--create-empty", "oracle"],
            capture_output=True, text=True, env=env, timeout=_TIMEOUT_S, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise RuntimeError(f"crm_shadow failed: {created.stdout}{created.stderr}")
        loaded = subprocess.run(
            ["crm", "-D", "plain", "-F", "configure"],
            input=text, capture_output=True, text=True, env=env, timeout=_TIMEOUT_S, check=False,
        )  # fmt: skip
        verify = subprocess.run(
            ["crm_verify", "-x", str(work / "shadow.oracle")],
            capture_output=True, text=True, env=env, timeout=_TIMEOUT_S, check=False,
        )  # fmt: skip
        output = loaded.stdout + loaded.stderr + verify.stdout + verify.stderr
        verdict = ToolVerdict(True, output)
        return ToolVerdict(not verdict.errors(), output)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def crm_verify_verdict(xml: str) -> ToolVerdict:
    """``crm_verify -x``'s verdict on a CIB."""
    work = Path(tempfile.mkdtemp(prefix="crm-verify-oracle-"))
    try:
        path = work / "cib.xml"
        path.write_text(xml)
        done = subprocess.run(
            ["crm_verify", "-V", "-x", str(path)],
            capture_output=True, text=True, env=_env(work), timeout=_TIMEOUT_S, check=False,
        )  # fmt: skip
        output = done.stdout + done.stderr
        verdict = ToolVerdict(True, output)
        return ToolVerdict(done.returncode in (0, 78) and not verdict.errors(), output)
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""The human report of an LLM gate, rendered from its evidence."""

from __future__ import annotations

from typing import Any

from providers.gates.common import short

#: Failed cases listed in the report (all of them are in the evidence).
SHOWN_FAILURES = 10


def render(ev: dict[str, Any]) -> str:
    lines = [f"{ev.get('gate', 'gate')}: {'PASSED' if ev['passed'] else 'FAILED'}"]
    subject = ev["subject"]
    version = f" v{subject['version']}" if subject.get("version") is not None else ""
    fp = subject.get("fingerprint") or subject.get("prompt_fingerprint")
    lines.append(f"  subject   {subject['address']}{version}  {short(fp)}")
    cf = ev["cases_file"]
    lines.append(f"  cases     {cf['path']}  {short(cf['fingerprint'])}  {cf['cases']} cases")
    lines.append(f"  model     {ev['model']} via {ev['endpoint']}")
    lines.append(
        f"  pass rate {ev['pass_rate']:.1%} ({ev['cases_passed']}/{ev['cases_total']} cases), "
        f"min {ev['pass_rate_min']:.0%}"
    )
    cost = "unknown" if ev["cost_usd"] is None else f"${ev['cost_usd']:.4f}"
    spent = "$0" if ev["spent_usd"] is None else f"${ev['spent_usd']:.4f}"
    tokens = ev["tokens"]
    lines.append(
        f"  calls     {ev['calls']} made, {ev['cache_hits']} answered from cache; tokens "
        f"{tokens['prompt']} in / {tokens['completion']} out; cost {cost} (spent now {spent})"
    )
    lat = ev.get("latency_ms")
    if lat:
        lines.append(
            f"  latency   p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, max {lat['max']:.0f} ms"
        )
    if ev["assertions"]:
        lines.append("")
        width = max(len(t) for t in ev["assertions"])
        lines.append(f"  {'assertion'.ljust(width)}  passed")
        for kind, row in sorted(ev["assertions"].items()):
            lines.append(f"  {kind.ljust(width)}  {row['passed']}/{row['total']}")
    bad = [c for c in ev["cases"] if not c["passed"]]
    if bad:
        lines.append("")
        lines.append(f"  failed cases ({len(bad)}):")
        for case in bad[:SHOWN_FAILURES]:
            lines.append(f"    - {_why(case)}")
        if len(bad) > SHOWN_FAILURES:
            lines.append(f"    … and {len(bad) - SHOWN_FAILURES} more (see the evidence)")
    return "\n".join(lines) + "\n"


def _why(case: dict[str, Any]) -> str:
    head = case["id"] + (f" ({case['description']})" if case.get("description") else "")
    if case.get("error"):
        return f"{head}: {case['error']}"
    failed = [a for a in case["assertions"] if not a["passed"]]
    reasons = "; ".join(f"{a['type']}: {a['reason']}" for a in failed[:3])
    output = case.get("output") or ""
    output = output if len(output) <= 80 else output[:79] + "…"
    return f"{head}: {reasons}; output {output!r}"

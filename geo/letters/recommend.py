"""The recommended actions (工作建议) a draft starts with, written from its figures; the sender
edits them before issuing. Each line answers one finding: overdue reports, hot spots, hot spots
that emerge or grow, a low closure rate, repeated returns and reworks."""

from __future__ import annotations

# Below this share of accepted reports closed, a letter asks for the backlog to be cleared.
LOW_CLOSURE = 0.8
PATTERN_ZH = {
    "new_hot": "新增热点",
    "consecutive_hot": "连续热点",
    "intensifying_hot": "加强热点",
    "persistent_hot": "持续热点",
    "sporadic_hot": "零星热点",
    "oscillating_hot": "振荡热点",
}
UNIT_ZH = {
    "working_days": "个工作日",
    "working_hours": "个工作时",
    "calendar_days": "天",
    "calendar_hours": "小时",
}


def _names(grids: list[dict], n: int = 3) -> str:
    shown = "、".join(g["name"] for g in grids[:n])
    return shown + (f"等 {len(grids)} 个网格" if len(grids) > n else "")


def _overdue(open_reports: dict) -> str | None:
    if not open_reports["overdue"]:
        return None
    first = next((r for r in open_reports["items"] if r["overdue_by"]), None)
    worst = ""
    if first is not None:
        by = first["overdue_by"]
        worst = f"（最长超期 {by['amount']:g} {UNIT_ZH[by['unit']]}）"
    return (
        f"对超期未办结的 {open_reports['overdue']} 件事件{worst}逐件明确责任人和办结时限，"
        "限期办结，并在回复中说明超期原因。"
    )


def _hotspots(hotspots: dict, by_category: list[dict]) -> str | None:
    if not hotspots["grids"]:
        return None
    top = "、".join(c["zh"] for c in by_category[:2] if c["received"])
    focus = f"，重点排查{top}" if top else ""
    return f"对 Gi* 热点网格{_names(hotspots['grids'])}开展集中排查整治{focus}。"


def _trend(trend: dict) -> str | None:
    grids = trend.get("grids") or []
    if not grids:
        return None
    kinds = "、".join(dict.fromkeys(PATTERN_ZH[g["pattern"]] for g in grids))
    return f"对呈{kinds}态势的{_names(grids)}提前部署防控力量，防止风险扩散。"


def _closure(figures: dict) -> str | None:
    rate = figures["closure_rate"]
    if rate is None or rate >= LOW_CLOSURE:
        return None
    return (
        f"本期结案率为 {rate * 100:.1f}%（{figures['closed']}/{figures['accepted']}），"
        f"低于 {LOW_CLOSURE * 100:.0f}%，请加快处置和核查进度。"
    )


def _returns(figures: dict) -> str | None:
    if not (figures["returned"] or figures["reworked"]):
        return None
    return (
        f"本期有 {figures['returned']} 件事件被回退、{figures['reworked']} 件返工，"
        "请核实职责边界和处置质量，减少回退和返工。"
    )


def draft(
    figures: dict, by_category: list[dict], hotspots: dict, trend: dict, open_reports: dict
) -> str:
    """Return the recommended actions as numbered lines of text."""
    lines = [
        line
        for line in (
            _overdue(open_reports),
            _hotspots(hotspots, by_category),
            _trend(trend),
            _closure(figures),
            _returns(figures),
        )
        if line
    ]
    lines.append("举一反三，健全隐患排查和闭环处置机制，按期书面回复整改情况。")
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))

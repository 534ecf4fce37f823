"""What a report's status is called on the pages: one table, as the command centre reads it,
and the few words another reader reads differently (the desk's 待受理 is the worker's 已上报;
a department's tasks are 待接收 and, once resolved, 待核查)."""

from __future__ import annotations

from geo.vocabulary import ReportStatus

S = ReportStatus
STATUS_NAMES = {
    "zh": {
        S.REPORTED: "待受理",
        S.ACCEPTED: "已立案",
        S.DISPATCHED: "已派遣",
        S.IN_PROGRESS: "处置中",
        S.RETURNED: "已回退",
        S.RESOLVED: "处置完成",
        S.VERIFIED: "核查通过",
        S.REJECTED: "不予立案",
        S.DUPLICATE: "重复",
    },
    "en": {
        S.REPORTED: "reported",
        S.ACCEPTED: "accepted",
        S.DISPATCHED: "dispatched",
        S.IN_PROGRESS: "in progress",
        S.RETURNED: "returned",
        S.RESOLVED: "resolved",
        S.VERIFIED: "verified",
        S.REJECTED: "rejected",
        S.DUPLICATE: "duplicate",
    },
}
_READ_AS = {
    "worker": {"zh": {S.REPORTED: "已上报", S.DUPLICATE: "重复上报"}, "en": {}},
    "department": {
        "zh": {S.DISPATCHED: "待接收", S.RESOLVED: "待核查"},
        "en": {S.DISPATCHED: "to take up", S.RESOLVED: "waiting for 核查"},
    },
}


def status_names(lang: str, reader: str = "desk") -> dict[str, str]:
    """Return each status's name in `lang` as `reader` (desk, worker, department) reads it."""
    return {**STATUS_NAMES[lang], **_READ_AS.get(reader, {}).get(lang, {})}

"""The evaluation page (`/evaluation`): the ranking of units by a rate, each with its 95 %
interval drawn to scale and its rank by the shrunken estimate; every rate of each unit; the
monthly trend of the closure rates as a table, and as JSON for a chart (`data-chart`)."""

from __future__ import annotations

from urllib.parse import urlencode

from geo.evaluation import scorecard
from geo.evaluation.query import By
from geo.identity.principal import Principal
from geo.reports import taxonomy
from geo.vocabulary import Role
from web.pages import PageRequest
from web.templating import lang_url, navigation, render_template

BAR_WIDTH = 160  # the interval drawn on a 0-100 % scale, in pixels

WORDS = {
    "zh": {
        "title": "综合评价",
        "by": "评价对象",
        "period": "评价周期",
        "period_hint": "如 2024、2024-06、2024-Q2；留空为全部",
        "theme": "专题",
        "all_themes": "全部专题",
        "rank_by": "排名依据",
        "show": "查看",
        "rank": "排名",
        "unit": "单位",
        "cases": "样本数",
        "rate": "比率",
        "interval": "95% 置信区间",
        "shrunk": "收缩估计",
        "pooled": "总体",
        "all_rates": "各项指标",
        "trend": "结案率月度趋势",
        "month": "月份",
        "due": "应结案",
        "closed": "结案",
        "on_time": "按期结案",
        "none": "无数据",
        "how": "排名按经验贝叶斯（贝塔-二项）收缩估计：样本越少，估计越靠近总体比率，"
        "小样本单位不会因偶然而排在首位或末位。区间为 95% Wilson 置信区间。"
        "各项定义见 docs/evaluation.md。",
        "forbidden_title": "没有权限",
        "invalid_title": "参数有误",
        "what_next": "综合评价对分析人员、指挥中心、管理员开放；职能部门与网格员可查看本单位。",
        "by_names": {
            "department": "职能部门",
            "district": "区县",
            "street": "街道/乡镇",
            "worker": "网格员",
        },
        "counts": {"due_to_close": "应结案", "overdue_open": "超期未处置"},
    },
    "en": {
        "title": "Evaluation",
        "by": "Units",
        "period": "Period",
        "period_hint": "e.g. 2024, 2024-06, 2024-Q2; empty: all time",
        "theme": "Theme",
        "all_themes": "All themes",
        "rank_by": "Ranked by",
        "show": "Show",
        "rank": "Rank",
        "unit": "Unit",
        "cases": "Cases",
        "rate": "Rate",
        "interval": "95 % interval",
        "shrunk": "Shrunken estimate",
        "pooled": "all units",
        "all_rates": "Every rate",
        "trend": "Closure rate per month",
        "month": "Month",
        "due": "Due to close",
        "closed": "Closed",
        "on_time": "Closed on time",
        "none": "No data",
        "how": "Ranked by the empirical Bayes (beta-binomial) estimate: the fewer cases a unit "
        "has, the nearer its estimate lies to the pooled rate, so a small unit is neither "
        "first nor last by luck. Intervals are 95 % Wilson intervals. Every definition is in "
        "docs/evaluation.md.",
        "forbidden_title": "Not allowed",
        "invalid_title": "Check the request",
        "what_next": "The evaluation is for planners, dispatchers and admins; departments and "
        "grid workers see their own.",
        "by_names": {
            "department": "departments",
            "district": "districts",
            "street": "streets/townships",
            "worker": "grid workers",
        },
        "counts": {"due_to_close": "Due to close", "overdue_open": "Overdue, not handled"},
    },
}


def default_by(who: Principal) -> By:
    """Return the units a role opens the page on: its own kind for a department or a worker."""
    return By.WORKER if who.role == Role.WORKER else By.DEPARTMENT


def allowed_bys(who: Principal) -> list[By]:
    """Return the kinds of units the page offers this role."""
    if who.role == Role.DEPARTMENT:
        return [By.DEPARTMENT]
    if who.role == Role.WORKER:
        return [By.WORKER]
    return list(By)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f}%"


def _bar(u: dict, rate: str, pooled: float | None) -> dict | None:
    """The interval and the rate on a 0-100 % scale, and the pooled rate's tick."""
    ci = u[f"{rate}_ci"]
    if ci is None:
        return None
    return {
        "low": round(ci[0] * BAR_WIDTH, 1),
        "high": round(ci[1] * BAR_WIDTH, 1),
        "at": round(u[rate] * BAR_WIDTH, 1),
        "pooled": None if pooled is None else round(pooled * BAR_WIDTH, 1),
        "width": BAR_WIDTH,
    }


def _unit_label(u: dict) -> str:
    """A department by its name; an area or a grid worker by name and code or username."""
    return f"{u['unit_name']} ({u['unit']})" if u["unit_name"] else u["unit"]


def _rows(answer: dict, lang: str) -> list[dict]:
    rate = answer["rank_by"]
    r = scorecard.RATES[rate]
    rows = []
    for u in answer["units"]:
        ci = u[f"{rate}_ci"]
        rows.append(
            {
                "rank": u["rank"] if u["rank"] is not None else "–",
                "unit": _unit_label(u),
                "cases": u[r.denominator] if u[r.denominator] is not None else "–",
                "rate": _pct(u[rate]),
                "interval": f"{_pct(ci[0])} – {_pct(ci[1])}" if ci else "–",
                "shrunk": _pct(u[f"{rate}_shrunk"]),
                "bar": _bar(u, rate, answer["pooled"][rate]),
                "rates": [
                    {
                        "value": _pct(u[name]),
                        "title": (
                            f"{_pct(u[f'{name}_ci'][0])} – {_pct(u[f'{name}_ci'][1])}"
                            if u[f"{name}_ci"]
                            else ""
                        ),
                    }
                    for name in scorecard.RATES
                ],
                "overdue_open": u["overdue_open"],
                "due_to_close": u["due_to_close"],
            }
        )
    return rows


def _series(months: list[dict]) -> dict:
    """The trend as a chart will want it: categories and one series per rate."""
    return {
        "months": [m["month"] for m in months],
        "closure_rate": [m["closure_rate"] for m in months],
        "on_time_closure_rate": [m["on_time_closure_rate"] for m in months],
        "due_to_close": [m["due_to_close"] for m in months],
    }


def page(page: PageRequest, who: Principal, answer: dict, months: list[dict]) -> str:
    """Return the evaluation page: the filters, the ranking, every rate, the trend."""
    words = WORDS[page.lang]
    rate_words = {name: r.zh if page.lang == "zh" else r.en for name, r in scorecard.RATES.items()}
    period = answer["period"]["label"] or ""
    return render_template(
        "evaluation.html",
        lang=page.lang,
        nav=navigation(page.path, page.query, page.lang, page.session),
        words=words,
        by=answer["by"],
        bys=[(str(b), words["by_names"][b]) for b in allowed_bys(who)],
        period=period,
        theme=answer["theme"] or "",
        themes=[(t.code, t.zh if page.lang == "zh" else t.en) for t in taxonomy.THEMES],
        rank_by=answer["rank_by"],
        rates=list(rate_words.items()),
        rank_label=rate_words[answer["rank_by"]],
        pooled=_pct(answer["pooled"][answer["rank_by"]]),
        rows=_rows(answer, page.lang),
        months=[
            {**m, "closure": _pct(m["closure_rate"]), "on_time": _pct(m["on_time_closure_rate"])}
            for m in months
        ],
        series=_series(months),
        action=page.path,
        csv_href=lang_url(
            "/api/v1/evaluation",
            urlencode(
                {
                    k: v
                    for k, v in {
                        "by": answer["by"],
                        "period": period,
                        "theme": answer["theme"] or "",
                        "rank_by": answer["rank_by"],
                        "format": "xlsx",
                    }.items()
                    if v
                }
            ),
            "zh",
        ),
    )


def forbidden(page: PageRequest, message: str, invalid: bool = False) -> str:
    """Return the page a role without the right gets (403), or a bad filter (422)."""
    words = WORDS[page.lang]
    return render_template(
        "forbidden.html",
        lang=page.lang,
        nav=navigation(page.path, page.query, page.lang, page.session),
        words={
            "title": words["invalid_title" if invalid else "forbidden_title"],
            "what_next": words["what_next"],
        },
        message=message,
    )

"""Facts about Daqing used by the demo: divisions, streets and townships, the 创安 campaigns."""

from __future__ import annotations

from datetime import date, timedelta

CITY = ("230600", "大庆市")

DIVISIONS: dict[str, str] = {
    "230602": "萨尔图区",
    "230603": "龙凤区",
    "230604": "让胡路区",
    "230605": "红岗区",
    "230606": "大同区",
    "230621": "肇州县",
    "230622": "肇源县",
    "230623": "林甸县",
    "230624": "杜尔伯特蒙古族自治县",
}

# Comprehensive grids per division: small grids in the four urban districts, large ones in the
# counties. Sums to the 4,880 comprehensive grids of Daqing's 创安 platform.
GRID_COUNTS: dict[str, int] = {
    "230602": 980,
    "230603": 700,
    "230604": 820,
    "230605": 520,
    "230606": 440,
    "230621": 380,
    "230622": 400,
    "230623": 310,
    "230624": 330,
}

URBAN = frozenset({"230602", "230603", "230604", "230605"})

# Streets (街道) and townships (镇/乡) per division. Names are those of Daqing's divisions; their
# outlines in the demo are generated, not surveyed.
STREETS: dict[str, list[str]] = {
    "230602": [
        "萨尔图街道",
        "会战街道",
        "铁人街道",
        "友谊街道",
        "富强街道",
        "拥军街道",
        "东风街道",
        "火炬街道",
        "东安街道",
        "大庆新村街道",
    ],
    "230603": [
        "龙凤街道",
        "兴化街道",
        "湿地街道",
        "三永街道",
        "东光街道",
        "黎明街道",
        "卧里屯街道",
        "龙凤镇",
    ],
    "230604": [
        "让胡路街道",
        "西宾街道",
        "奋斗街道",
        "乘风街道",
        "银浪街道",
        "庆新街道",
        "龙岗街道",
        "旭园街道",
        "喇嘛甸镇",
    ],
    "230605": ["红岗街道", "八百垧街道", "解放街道", "创业城街道", "杏树岗镇"],
    "230606": [
        "庆葡街道",
        "新华街道",
        "大同镇",
        "高台子镇",
        "太阳升镇",
        "林源镇",
        "祝三乡",
        "八井子乡",
        "双榆树乡",
        "老山头乡",
    ],
    "230621": [
        "肇州镇",
        "永乐镇",
        "丰乐镇",
        "朝阳沟镇",
        "兴城镇",
        "二井镇",
        "双发乡",
        "托古乡",
        "朝阳乡",
        "永胜乡",
        "榆树乡",
        "新福乡",
    ],
    "230622": [
        "肇源镇",
        "三站镇",
        "二站镇",
        "茂兴镇",
        "古龙镇",
        "新站镇",
        "头台镇",
        "古恰镇",
        "福兴乡",
        "薄荷台乡",
        "和平乡",
        "超等乡",
        "民意乡",
        "义顺乡",
        "浩德乡",
        "大兴乡",
    ],
    "230623": ["林甸镇", "红旗镇", "花园镇", "四季青镇", "东兴乡", "宏伟乡", "四合乡"],
    "230624": [
        "泰康镇",
        "胡吉吐莫镇",
        "烟筒屯镇",
        "他拉哈镇",
        "一心乡",
        "克尔台乡",
        "白音诺勒乡",
        "敖林西伯乡",
        "巴彦查干乡",
        "腰新乡",
        "江湾乡",
    ],
}

# Communities (社区) and villages (村) the brief's real cases name, placed in their street.
NAMED_COMMUNITIES: dict[str, list[str]] = {
    "太阳升镇": ["太阳升村", "九间村"],
    "旭园街道": ["旭园社区"],
    "湿地街道": ["湿地社区"],
}

# Exclusive (专属) grids: kind → (name stem, how many). 84 in all.
EXCLUSIVE_KINDS: dict[str, tuple[str, int]] = {
    "school": ("学校", 24),
    "hospital": ("医院", 14),
    "oilfield": ("油田作业区", 18),
    "market": ("农贸市场", 16),
    "industrial_park": ("工业园区", 12),
}

POPULATION = 2_780_000  # Daqing's resident population, spread over the grids.


def _item(code: str, label: str, answer: str = "yes_no", tally: str | None = None) -> dict:
    """One screening checklist item (geo.campaigns.checklist)."""
    return {"code": code, "label": label, "answer": answer, **({"tally": tally} if tally else {})}


_GAS = [
    _item("gas_alarm", "安装燃气报警器"),
    _item("hose_aged", "软管老化或超期"),
    _item("leak_smell", "有燃气异味"),
    _item("cylinders", "液化气瓶数", "number"),
]
_FIRE = [
    _item("exit_clear", "安全出口畅通"),
    _item("extinguishers", "灭火器数量", "number"),
    _item("wiring_ok", "电气线路合规"),
    _item("flammables", "易燃物违规存放"),
]
_FLOOD = [
    _item("low_lying", "低洼易涝"),
    _item("dilapidated", "危旧房屋"),
    _item("drainage_ok", "排水通畅"),
    _item("to_relocate", "需转移人数", "number", "relocations"),
    _item("households_moved", "转移户数", "number", "relocated_households"),
]


def _campaign(
    code: str,
    name: str,
    theme: str,
    starts: date,
    days: int,
    note: str,
    departments: list[str],
    checklist: list[dict],
    targets: dict | None = None,
) -> dict:
    return {
        "code": code,
        "name": name,
        "theme": theme,
        "starts_on": starts,
        "ends_on": starts + timedelta(days=days - 1),
        "description": note,
        "categories": [],  # every category of the theme
        "districts": list(DIVISIONS),
        "departments": departments,
        "checklist": checklist,
        "targets": targets,
    }


# 一号, 二号, 四号, 六号 and 十号 are known; the others carry plausible themes. Partners are
# departments of the routing table (创安一号: 公安, 应急, 城管).
CAMPAIGNS: list[dict] = [
    _campaign(
        "CA01",
        "创安一号",
        "stability",
        date(2023, 4, 20),
        20,
        "社会稳定风险隐患排查",
        ["公安局", "应急管理局", "城市管理综合执法局"],
        [
            _item("dispute_signs", "矛盾纠纷苗头"),
            _item("petition_signs", "信访苗头"),
            _item("key_persons", "重点人员数", "number"),
            _item("note", "情况说明", "text"),
        ],
    ),
    _campaign(
        "CA02",
        "创安二号",
        "elderly",
        date(2023, 5, 15),
        30,
        "走访全市60岁以上老年人56万人",
        ["民政局", "卫生健康委员会"],
        [
            _item("seen_in_person", "本人见面"),
            _item("needs_care", "需要照护"),
            _item("home_hazard", "居家安全隐患"),
            _item("note", "情况说明", "text"),
        ],
        {"register": "households", "filter": {"living_alone_over": 60}},
    ),
    _campaign(
        "CA03",
        "创安三号",
        "gas",
        date(2023, 6, 20),
        25,
        "城镇燃气安全隐患排查",
        ["燃气公司", "住房和城乡建设局"],
        _GAS,
    ),
    _campaign(
        "CA04",
        "创安四号",
        "flood",
        date(2023, 7, 25),
        5,
        "防汛防台风: 5天排查隐患3139处, 转移365户724人",
        ["水务局", "应急管理局", "住房和城乡建设局", "城市管理综合执法局"],
        _FLOOD,
    ),
    _campaign(
        "CA05",
        "创安五号",
        "dispute",
        date(2023, 9, 1),
        30,
        "矛盾纠纷排查化解",
        ["街道综治中心", "司法所", "人力资源和社会保障局"],
        [
            _item("dispute_found", "发现矛盾纠纷"),
            _item("mediated", "当场调解"),
            _item("parties", "涉及人数", "number"),
            _item("kind", "纠纷类型", "text"),
        ],
    ),
    _campaign(
        "CA06",
        "创安六号",
        "fire",
        date(2023, 11, 1),
        30,
        "小作坊小场所火灾隐患排查",
        ["消防救援支队", "应急管理局"],
        [*_FIRE, _item("people_live_in", "住人（三合一）")],
        {"register": "workshops"},
    ),
    _campaign(
        "CA07",
        "创安七号",
        "gas",
        date(2024, 1, 10),
        20,
        "冬季用气安全",
        ["燃气公司", "住房和城乡建设局"],
        [*_GAS, _item("ventilation", "通风良好")],
    ),
    _campaign(
        "CA08",
        "创安八号",
        "fire",
        date(2024, 3, 1),
        30,
        "春季防火",
        ["消防救援支队"],
        [*_FIRE, _item("ebike_indoors", "电动车室内充电")],
    ),
    _campaign(
        "CA09",
        "创安九号",
        "flood",
        date(2024, 6, 15),
        30,
        "汛前隐患排查",
        ["水务局", "应急管理局"],
        [*_FLOOD, _item("embankment_risk", "堤防隐患")],
    ),
    _campaign(
        "CA10",
        "创安十号",
        "road_safety",
        date(2024, 8, 22),
        40,
        "道路交通安全: 入户走访30.8万次, 排查隐患3247处",
        ["公安交警支队", "交通运输局"],
        [
            _item("road_damage", "道路破损"),
            _item("missing_sign", "标志标线缺失"),
            _item("farm_vehicle_people", "农用车违规载人"),
            _item("blackspot", "事故多发点段"),
            _item("notable", "重点情况", "text"),
        ],
    ),
]

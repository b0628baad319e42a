"""What the demo knows about each incident category: its share of reports, its seasons, how far
from a household it happens, how often the grid member handles it on the spot, and what reports
say. Categories themselves (codes, time limits, departments) come from the database."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CategoryModel:
    share: float
    months: tuple[float, ...]  # relative rate, January..December
    spread_m: float  # how far from a household the incident happens
    self_handled: float  # share the grid member handles on the spot
    descriptions: tuple[str, ...]


CATEGORY_MODELS = {
    "sanitation": CategoryModel(
        0.28,
        (1.3, 1.4, 1.0, 1.0, 1.0, 1.1, 1.2, 1.2, 1.0, 1.0, 0.9, 1.0),
        40,
        0.45,
        ("生活垃圾堆放未及时清运", "路边积存建筑垃圾", "沟渠漂浮垃圾、水体发黑发臭", "农贸市场周边污水横流"),
    ),
    "public_facility": CategoryModel(
        0.14,
        (0.9, 0.9, 1.0, 1.0, 1.1, 1.2, 1.3, 1.2, 1.0, 1.0, 0.9, 0.9),
        40,
        0.15,
        ("路灯不亮", "自来水管道堵塞漏水", "井盖破损缺失", "村道路面塌陷"),
    ),
    "resident_service": CategoryModel(
        0.13,
        (1.3, 1.2, 0.9, 0.9, 1.0, 1.1, 0.9, 0.9, 1.5, 1.3, 0.9, 1.0),
        30,
        0.5,
        ("独居老人需上门体检", "病患家庭需协助抢收", "为高龄老人上门理发", "低保材料代办"),
    ),
    "dispute": CategoryModel(
        0.12,
        (1.3, 1.4, 1.0, 1.0, 1.0, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0, 1.1),
        30,
        0.35,
        ("邻里因树木遮挡农田发生纠纷", "新建房屋影响邻居采光", "家庭矛盾需调解", "土地边界争议"),
    ),
    "safety_hazard": CategoryModel(
        0.12,
        (1.4, 1.5, 1.0, 0.9, 0.9, 1.0, 1.1, 1.1, 1.0, 1.0, 1.1, 1.3),
        60,
        0.2,
        ("燃气管道老化存在泄漏隐患", "电动车楼道内充电", "危房存在倒塌风险", "消防通道被占用"),
    ),
    "epidemic": CategoryModel(
        0.07,
        (2.0, 1.8, 1.2, 0.8, 0.6, 0.6, 0.8, 0.8, 0.7, 0.8, 1.2, 1.8),
        30,
        0.3,
        ("返乡人员健康登记", "发热人员上报", "疫苗接种动员", "聚集性活动排查"),
    ),
    "straw_burning": CategoryModel(
        0.07,
        (0.2, 0.2, 0.3, 0.6, 1.2, 1.0, 0.3, 0.8, 4.5, 4.0, 1.0, 0.3),
        250,
        0.3,
        ("田间焚烧稻草", "发现秸秆焚烧烟点", "田埂堆放秸秆疑似焚烧"),
    ),
    "flood_geohazard": CategoryModel(
        0.07,
        (0.1, 0.1, 0.2, 0.4, 1.0, 3.5, 4.5, 4.0, 1.5, 0.4, 0.1, 0.1),
        300,
        0.1,
        ("山体滑坡隐患点出现裂缝", "河道水位上涨漫堤", "强降雨致道路积水", "泥石流沟道堵塞"),
    ),
}

# Reports by hour of day (China time): quiet at night, busy mid-morning and afternoon.
HOUR_WEIGHT = np.array(
    [0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 0.8, 1.5, 2.6, 3.2, 3.3, 2.8, 1.8, 1.7, 2.6, 3.0, 3.0, 2.6, 2.0, 1.6, 1.2,
     0.9, 0.6, 0.4]
)  # fmt: skip
# Straw is burnt at dusk, after the day's work.
STRAW_HOUR_WEIGHT = np.roll(HOUR_WEIGHT, 8)


@dataclass(frozen=True)
class Category:
    code: str
    time_limit_us: int  # of working time when `working`
    department_id: int
    priority: str
    working: bool = False  # the limit runs in the county's working hours (sql/functions/work_calendar.sql)


def description_texts(categories: list[Category]) -> list[str]:
    """All description templates, category by category: the staging table stores an index."""
    return [text for category in categories for text in CATEGORY_MODELS[category.code].descriptions]


SURNAMES_FOR_CALLERS = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")


def caller_names() -> list[str]:
    """Callers give a surname and a title: 王先生, 王女士, ... (index 1.. in the staging table)."""
    return [surname + title for surname in SURNAMES_FOR_CALLERS for title in ("先生", "女士")]

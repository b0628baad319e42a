"""Chinese names for the demo: townships, villages, people. Township names are Hongya's real ones;
their seats and boundaries in the demo are synthetic."""

from __future__ import annotations

import numpy as np

# (name_zh, name_en); the first is the county seat, the last the mountain township.
TOWNSHIPS = [
    ("洪川镇", "Hongchuan Town"),
    ("止戈镇", "Zhige Town"),
    ("余坪镇", "Yuping Town"),
    ("东岳镇", "Dongyue Town"),
    ("中山镇", "Zhongshan Town"),
    ("槽渔滩镇", "Caoyutan Town"),
    ("中保镇", "Zhongbao Town"),
    ("将军镇", "Jiangjun Town"),
    ("三宝镇", "Sanbao Town"),
    ("花溪镇", "Huaxi Town"),
    ("柳江镇", "Liujiang Town"),
    ("高庙镇", "Gaomiao Town"),
    ("瓦屋山镇", "Wawushan Town"),
]

_VILLAGE_FIRST = list("青白红金石柏双新桂团光龙凤桃竹杨松花长永兴平安高黄古沙太福")
_VILLAGE_SECOND = list("龙鹤星竹桥树河华花结明泉岗山坪林溪湾坝池田庙园峰寺堰")
_COMMUNITY_WORDS = ["城东", "城西", "城南", "城北", "滨江", "民主", "复兴", "解放", "幸福", "和平"]

_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国红梅志文斌")


def village_names(rng: np.random.Generator, count: int) -> list[str]:
    """`count` distinct two-character village stems such as 青龙, 白鹤."""
    stems = [a + b for a in _VILLAGE_FIRST for b in _VILLAGE_SECOND if a != b]
    order = rng.permutation(len(stems))[:count]
    return [stems[i] for i in order]


def community_names(count: int) -> list[str]:
    return [
        _COMMUNITY_WORDS[i % len(_COMMUNITY_WORDS)] + ("" if i < 10 else str(i // 10)) for i in range(count)
    ]


def person_names(rng: np.random.Generator, count: int) -> list[str]:
    surnames = rng.integers(0, len(_SURNAMES), count)
    given = rng.integers(0, len(_GIVEN), (count, 2))
    single = rng.random(count) < 0.35
    return [
        _SURNAMES[s] + _GIVEN[g[0]] + ("" if one else _GIVEN[g[1]])
        for s, g, one in zip(surnames, given, single, strict=True)
    ]

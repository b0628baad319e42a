"""The report's words in Simplified Chinese and English. Names of indicators, hotspot classes and
coverage statuses come from the dashboard's messages (dashboard/i18n.py), so both say the same."""

from __future__ import annotations

from dashboard.i18n import translate

TEXTS: dict[str, dict[str, str]] = {
    "title": {"zh": "{area}网格化服务管理月度报告", "en": "{area}: grid management report"},
    "period": {"zh": "统计期间：{first} 至 {last}", "en": "Period: {first} to {last}"},
    "made": {
        "zh": "生成时间：{at}（数据截至 {as_of}），生成人：{by}",
        "en": "Made {at} (data as of {as_of}) by {by}",
    },
    "bulletin": {"zh": "一、总体情况", "en": "1. The month in figures"},
    "bulletin.line": {
        "zh": "本期接报事件{received}件，立案{filed}件；应结案{due}件，已结案{closed}件，结案率{closure}；"
        "按期结案{on_time}件，按期结案率{on_time_rate}。",
        "en": "{received} incidents received, {filed} filed; {due} due, {closed} closed (closure rate "
        "{closure}); {on_time} closed on time (on-time rate {on_time_rate}).",
    },
    "column.figure": {"zh": "指标", "en": "Figure"},
    "column.current": {"zh": "本期", "en": "This period"},
    "column.previous": {"zh": "上期", "en": "Previous period"},
    "column.last_year": {"zh": "去年同期", "en": "A year earlier"},
    "column.change_previous": {"zh": "较上期", "en": "vs previous"},
    "column.change_last_year": {"zh": "较去年同期", "en": "vs a year earlier"},
    "definitions": {"zh": "口径说明", "en": "Definitions"},
    "definition.received": {
        "zh": "接报：上报时间在统计期间内的事件。",
        "en": "Received: reported within the period.",
    },
    "definition.filed": {"zh": "立案：接报且已受理的事件。", "en": "Filed: received and accepted."},
    "definition.due": {
        "zh": "应结案：未被驳回、最终办结时限（含批准的延期）在统计期间内的事件；挂账事件另计。",
        "en": "Due: not rejected, with its final due time (after approved extensions) within the period; "
        "cases on the register are counted apart.",
    },
    "definition.closure_rate": {
        "zh": "结案率 = 应结案事件中截至统计时点已结案的件数 ÷ 应结案件数。",
        "en": "Closure rate = due cases closed by the time the figures are seen ÷ due cases.",
    },
    "definition.on_time_rate": {
        "zh": "按期结案率 = 应结案事件中在时限内结案的件数 ÷ 应结案件数。",
        "en": "On-time rate = due cases closed by their due time ÷ due cases.",
    },
    "maps": {"zh": "二、地图", "en": "2. Maps"},
    "map.response": {"zh": "按期结案率与网格覆盖", "en": "On-time rate and grid coverage"},
    "map.hotspots": {"zh": "事件热点与热力", "en": "Hot spots and incident density"},
    "layer.on_time": {"zh": "按期结案率（{unit}）", "en": "On-time rate by {unit}"},
    "layer.coverage": {
        "zh": "覆盖缺口（无网格员、未巡查）",
        "en": "Coverage gaps (no member, not patrolled)",
    },
    "layer.hotspots": {"zh": "热点/冷点（Gi*）", "en": "Hot and cold spots (Gi*)"},
    "layer.heat": {"zh": "事件热力：{categories}", "en": "Incident density: {categories}"},
    "layer.names": {"zh": "地名", "en": "Place names"},
    "layer.outlines": {"zh": "边界", "en": "Boundaries"},
    "legend.no_due": {"zh": "无应结案事件", "en": "No case due"},
    "tables": {"zh": "三、排名与明细", "en": "3. Rankings and lists"},
    "table.units": {"zh": "{unit}按期结案率排名", "en": "{unit}s ranked by on-time rate"},
    "table.slowest": {"zh": "结案最慢的十个网格", "en": "The ten slowest grids"},
    "table.overdue": {"zh": "超期最久的十件在办事件", "en": "The ten most overdue open cases"},
    "table.categories": {"zh": "主要事件类别及变化", "en": "Top categories and their change"},
    "trend": {"zh": "四、近十二个月趋势", "en": "4. The last twelve months"},
    "column.rank": {"zh": "排名", "en": "Rank"},
    "column.name": {"zh": "名称", "en": "Name"},
    "column.grid": {"zh": "网格", "en": "Grid"},
    "column.township": {"zh": "乡镇/街道", "en": "Township"},
    "column.case": {"zh": "事件编号", "en": "Case"},
    "column.category": {"zh": "类别", "en": "Category"},
    "column.status": {"zh": "状态", "en": "Status"},
    "column.department": {"zh": "承办部门", "en": "Department"},
    "column.due_at": {"zh": "办结时限", "en": "Due"},
    "column.overdue_h": {"zh": "已超期(小时)", "en": "Overdue (h)"},
    "column.received_change": {"zh": "较上期", "en": "vs previous"},
    "chart.counts": {"zh": "接报与应结案（件）", "en": "Received and due"},
    "chart.rates": {"zh": "结案率与按期结案率", "en": "Closure and on-time rates"},
    "none": {"zh": "无", "en": "None"},
    "footer": {
        "zh": "本报告由 gridwatch 生成，数据与仪表盘“处置效能”“网格覆盖”“热点分析”页面一致；文件可离线打开。",
        "en": "Made by gridwatch from the same figures as the dashboard's response, coverage and hotspot "
        "pages; the file opens without a network.",
    },
    "unit.township": {"zh": "乡镇/街道", "en": "township"},
    "unit.village": {"zh": "村/社区", "en": "village"},
    "unit.grid": {"zh": "网格", "en": "grid"},
}


def text(key: str, lang: str, **values) -> str:
    """A report text, or a dashboard message (indicator.*, hotspots.class.*, coverage.status.*)."""
    entry = TEXTS.get(key)
    words = (entry.get(lang) or entry["zh"]) if entry else translate(key, lang)
    return words.format(**values) if values else words

"""User-facing text and number/time formats in Simplified Chinese (default) and English.

The language is chosen per URL with ``?lang=zh|en`` (links and bookmarks keep it); without it the
configured ``GRIDWATCH_DEFAULT_LANGUAGE`` applies. Times are shown in the county's time zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from flask import current_app

from dashboard.analytics_text import ANALYTICS_MESSAGES

LANGUAGES = ("zh", "en")
# Chinese counties keep Beijing time; the tiles' period filter uses the same zone.
LOCAL_TIME = ZoneInfo("Asia/Shanghai")

MESSAGES: dict[str, dict[str, str]] = {
    "app.title": {"zh": "网格化管理中心 · gridwatch", "en": "Grid Management Center · gridwatch"},
    "home.heading": {"zh": "全县概况", "en": "County overview"},
    "home.grids": {"zh": "网格数", "en": "Grids"},
    "home.incidents": {"zh": "事件数", "en": "Incidents"},
    "home.open": {"zh": "在办事件", "en": "Open incidents"},
    # navigation and the signed-in user
    "nav.home": {"zh": "概况", "en": "Overview"},
    "nav.map": {"zh": "实时地图", "en": "Live map"},
    "nav.queues": {"zh": "工作队列", "en": "Work queues"},
    "user.login": {"zh": "登录", "en": "Log in"},
    "user.logout": {"zh": "退出", "en": "Log out"},
    "role.inspector": {"zh": "网格员", "en": "Inspector"},
    "role.operator": {"zh": "指挥中心调度员", "en": "Operator"},
    "role.department": {"zh": "部门处置员", "en": "Department handler"},
    "role.leader": {"zh": "领导", "en": "Leader"},
    "role.admin": {"zh": "管理员", "en": "Administrator"},
    # filters kept across pages
    "filter.category": {"zh": "事件类别", "en": "Category"},
    "filter.category.all": {"zh": "全部类别", "en": "All categories"},
    "filter.period": {"zh": "时段", "en": "Period"},
    "filter.status": {"zh": "状态", "en": "Status"},
    "period.all": {"zh": "全部时间", "en": "All time"},
    "period.month": {"zh": "本月", "en": "This month"},
    "period.last_month": {"zh": "上月", "en": "Last month"},
    "period.3m": {"zh": "近三个月", "en": "Last 3 months"},
    "period.year": {"zh": "今年", "en": "This year"},
    "period.12m": {"zh": "近十二个月", "en": "Last 12 months"},
    # workflow words
    "status.reported": {"zh": "待受理", "en": "Reported"},
    "status.accepted": {"zh": "已立案", "en": "Accepted"},
    "status.rejected": {"zh": "不予立案", "en": "Rejected"},
    "status.dispatched": {"zh": "已派遣", "en": "Dispatched"},
    "status.in_progress": {"zh": "处置中", "en": "In progress"},
    "status.registered": {"zh": "已挂账", "en": "On the register"},
    "status.resolved": {"zh": "已处置", "en": "Resolved"},
    "status.verified": {"zh": "已核查", "en": "Verified"},
    "status.closed": {"zh": "已结案", "en": "Closed"},
    "action.report": {"zh": "上报", "en": "Report"},
    "action.accept": {"zh": "立案", "en": "Accept"},
    "action.reject": {"zh": "不予立案", "en": "Reject"},
    "action.link_duplicate": {"zh": "重复件", "en": "Mark duplicate"},
    "action.dispatch": {"zh": "派遣", "en": "Dispatch"},
    "action.start": {"zh": "开始处置", "en": "Start"},
    "action.resolve": {"zh": "处置反馈", "en": "Resolve"},
    "action.verify": {"zh": "核查通过", "en": "Verify"},
    "action.rework": {"zh": "返工", "en": "Send back for rework"},
    "action.close": {"zh": "结案", "en": "Close"},
    "action.rate": {"zh": "评价", "en": "Rate"},
    "action.return": {"zh": "退回", "en": "Return"},
    "action.extend": {"zh": "批准延期", "en": "Approve extension"},
    "action.register": {"zh": "挂账", "en": "File on the register"},
    "action.resume": {"zh": "恢复处置", "en": "Resume handling"},
    "action.escalate": {"zh": "上报上级", "en": "Escalate"},
    "action.self_handle": {"zh": "自行处置", "en": "Handle on the spot"},
    "action.comment": {"zh": "备注", "en": "Comment"},
    "priority.low": {"zh": "低", "en": "Low"},
    "priority.normal": {"zh": "一般", "en": "Normal"},
    "priority.high": {"zh": "高", "en": "High"},
    "priority.urgent": {"zh": "紧急", "en": "Urgent"},
    "level.grid": {"zh": "网格", "en": "Grid"},
    "level.village": {"zh": "村/社区", "en": "Village"},
    "level.township": {"zh": "乡镇/街道", "en": "Township"},
    "level.county": {"zh": "县/区", "en": "County"},
    # the live map
    "map.heading": {"zh": "实时地图", "en": "Live map"},
    "counter.new_today": {"zh": "今日新增", "en": "New today"},
    "counter.open": {"zh": "在办", "en": "Open"},
    "counter.overdue": {"zh": "超期", "en": "Overdue"},
    "counter.closed_today": {"zh": "今日结案", "en": "Closed today"},
    "layer.grids": {"zh": "网格", "en": "Grids"},
    "layer.incidents": {"zh": "事件", "en": "Incidents"},
    "layer.heatmap": {"zh": "热力图", "en": "Heatmap"},
    "layer.labels": {"zh": "地名", "en": "Place names"},
    "layers.heading": {"zh": "图层", "en": "Layers"},
    "legend.heading": {"zh": "图例", "en": "Legend"},
    "legend.no_open": {"zh": "无在办事件", "en": "No open incidents"},
    "legend.open": {"zh": "有在办事件", "en": "Open incidents"},
    "legend.overdue": {"zh": "有超期事件", "en": "Overdue incidents"},
    "legend.heatmap": {"zh": "热力图（每个六边形的事件数）", "en": "Heatmap (incidents per hexagon)"},
    "legend.cluster": {"zh": "事件数（缩小时聚合）", "en": "Incident count (zoomed out)"},
    "legend.overdue_point": {"zh": "红圈：已超期", "en": "Red ring: overdue"},
    "map.own_data": {"zh": "网格数据 © gridwatch", "en": "Grid data © gridwatch"},
    "tooltip.open": {"zh": "在办", "en": "open"},
    "tooltip.overdue": {"zh": "超期", "en": "overdue"},
    "tooltip.member": {"zh": "网格员", "en": "member"},
    "tooltip.no_member": {"zh": "无网格员", "en": "no member"},
    "tooltip.incidents": {"zh": "件", "en": "incidents"},
    "tooltip.age": {"zh": "已上报", "en": "reported"},
    "tooltip.hours": {"zh": "小时", "en": "h ago"},
    # the incident card
    "card.title": {"zh": "事件", "en": "Incident"},
    "card.close": {"zh": "关闭", "en": "Close card"},
    "card.status": {"zh": "状态", "en": "Status"},
    "card.category": {"zh": "类别", "en": "Category"},
    "card.priority": {"zh": "优先级", "en": "Priority"},
    "card.description": {"zh": "描述", "en": "Description"},
    "card.photos": {"zh": "照片", "en": "Photos"},
    "card.grid": {"zh": "所属网格", "en": "Grid"},
    "card.member": {"zh": "网格员", "en": "Grid member"},
    "card.no_member": {"zh": "未配备", "en": "none assigned"},
    "card.department": {"zh": "处置部门", "en": "Department"},
    "card.level": {"zh": "办理层级", "en": "Handled at"},
    "card.reported_at": {"zh": "上报时间", "en": "Reported"},
    "card.observed_at": {"zh": "发现时间", "en": "Observed"},
    "card.due": {"zh": "办理期限", "en": "Due"},
    "card.no_due": {"zh": "未派遣，未计时", "en": "not dispatched, no clock running"},
    "card.clock_stopped": {"zh": "已挂账，暂停计时", "en": "on the register, clock stopped"},
    "card.warning.green": {"zh": "正常", "en": "on time"},
    "card.warning.yellow": {"zh": "即将超期", "en": "due soon"},
    "card.warning.red": {"zh": "已超期", "en": "overdue"},
    "card.timeline": {"zh": "处置过程", "en": "Timeline"},
    "card.actions": {"zh": "可办理操作", "en": "Actions"},
    "card.read_only": {"zh": "当前角色无可办理操作", "en": "No action for your role now"},
    "card.note": {"zh": "意见/理由", "en": "Note / reason"},
    "card.new_due": {"zh": "新的办理期限（延期、恢复处置）", "en": "New due time (extension, resumption)"},
    "card.done": {"zh": "已办理", "en": "Done"},
    "card.system": {"zh": "系统", "en": "system"},
    # the work queues
    "queues.heading": {"zh": "工作队列", "en": "Work queues"},
    "queue.new": {"zh": "待受理", "en": "New reports to accept"},
    "queue.overdue": {"zh": "已超期", "en": "Overdue"},
    "queue.due_soon": {"zh": "即将到期", "en": "Due soon"},
    "queue.returned": {"zh": "部门退回", "en": "Returned by departments"},
    "queue.verify": {"zh": "待核查", "en": "Awaiting verification"},
    "queue.empty": {"zh": "暂无事件", "en": "Nothing here"},
    "queue.search": {"zh": "筛选…", "en": "Filter…"},
    "column.id": {"zh": "编号", "en": "No."},
    "column.category": {"zh": "类别", "en": "Category"},
    "column.grid": {"zh": "网格", "en": "Grid"},
    "column.status": {"zh": "状态", "en": "Status"},
    "column.reported_at": {"zh": "上报时间", "en": "Reported"},
    "column.due_at": {"zh": "期限", "en": "Due"},
    "column.description": {"zh": "描述", "en": "Description"},
    # logging in
    "login.heading": {"zh": "登录", "en": "Log in"},
    "login.username": {"zh": "用户名", "en": "Username"},
    "login.password": {"zh": "密码", "en": "Password"},
    "login.submit": {"zh": "登录", "en": "Log in"},
    "login.required": {"zh": "请先登录。", "en": "Please log in first."},
    **ANALYTICS_MESSAGES,
}


def translate(key: str, language: str = "zh") -> str:
    entry = MESSAGES[key]
    return entry.get(language) or entry["zh"]


def resolve_language(requested: str | None) -> str:
    """The requested language when gridwatch speaks it, else the configured default."""
    if requested in LANGUAGES:
        return requested
    return current_app.extensions["gridwatch.settings"].default_language


def language_of_query(search: str | None) -> str:
    """The language asked for by a URL query string such as ``?lang=en``."""
    return resolve_language(parse_qs((search or "").lstrip("?")).get("lang", [None])[0])


def format_count(value: int, language: str) -> str:
    """A count as each language writes it: 12,345 in English; in Chinese 1.2万 from ten thousand."""
    if language == "zh" and value >= 10_000:
        return f"{value / 10_000:.1f}".rstrip("0").rstrip(".") + "万"
    return f"{value:,}"


def format_time(value: datetime | None, language: str) -> str:
    """Local time written one way in both languages (2026-12-03 09:20): a bare 03/12 means
    3 December to an English reader and 12 March to a Chinese one."""
    if value is None:
        return "—"
    return f"{value.astimezone(LOCAL_TIME):%Y-%m-%d %H:%M}"


def format_duration(value: timedelta, language: str) -> str:
    """A duration to the minute, largest units first: 2天3小时 / 2 d 3 h."""
    minutes = int(abs(value).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    units = ("天", "小时", "分钟") if language == "zh" else (" d", " h", " min")
    parts = [f"{n}{unit}" for n, unit in zip((days, hours, minutes), units, strict=True) if n]
    return ("" if language == "zh" else " ").join(parts[:2]) or f"0{units[2]}"

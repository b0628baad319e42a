// Every text the page shows, in Simplified Chinese (the default) and English.

export const LANGUAGES = ["zh", "en"];

const TEXTS = {
  zh: {
    title: "事件上报",
    login_title: "登录",
    username: "用户名",
    password: "密码",
    login: "登录",
    logout: "退出",
    login_failed: "登录失败",
    login_needs_network: "登录需要网络连接",
    position: "位置",
    locating: "正在定位…",
    no_position: "无法获取定位：请在地图上选择位置",
    no_geolocation: "此浏览器不支持定位：请在地图上选择位置",
    accuracy: "精度 ±{m} 米",
    moved: "已手动调整位置",
    accuracy_warning: "定位精度较差（±{m} 米，超过 50 米）：请到开阔处稍候，或在地图上调整位置",
    map_hint: "可拖动标记或点击地图调整位置",
    use_gps: "使用当前定位",
    category: "类别",
    choose_category: "请选择类别",
    description: "描述",
    photo: "照片",
    submit: "上报",
    need_position: "请先确定位置",
    need_category: "请选择类别",
    photo_too_large: "照片过大（最多 {mb} MB）",
    queued: "已保存，联网后自动发送",
    sent: "已上报（编号 {id}）",
    queue_title: "待发送",
    queue_empty: "没有待发送的上报",
    waiting: "等待网络",
    sending: "发送中…",
    refused: "被拒绝：{message}",
    discard: "删除",
    recent_title: "我的上报",
    recent_empty: "暂无上报",
    recent_offline: "离线：显示上次加载的记录",
    online: "已联网",
    offline: "离线：上报将保存在手机上，联网后自动发送",
    storage_failed: "无法在手机上保存上报：{message}",
    status: {
      reported: "已上报",
      accepted: "已立案",
      rejected: "不予立案",
      dispatched: "已派遣",
      in_progress: "处置中",
      registered: "已挂账",
      resolved: "已处置",
      verified: "已核查",
      closed: "已结案",
    },
  },
  en: {
    title: "Report an incident",
    login_title: "Log in",
    username: "Username",
    password: "Password",
    login: "Log in",
    logout: "Log out",
    login_failed: "Login failed",
    login_needs_network: "Logging in needs a network connection",
    position: "Position",
    locating: "Locating…",
    no_position: "No position from the phone: pick the place on the map",
    no_geolocation: "This browser cannot locate: pick the place on the map",
    accuracy: "accuracy ±{m} m",
    moved: "moved by hand",
    accuracy_warning: "Poor accuracy (±{m} m, over 50 m): wait in the open or move the point on the map",
    map_hint: "Drag the marker or tap the map to move the point",
    use_gps: "Use my position",
    category: "Category",
    choose_category: "Choose a category",
    description: "Description",
    photo: "Photo",
    submit: "Report",
    need_position: "Set the position first",
    need_category: "Choose a category",
    photo_too_large: "The photo is too large (at most {mb} MB)",
    queued: "Saved: it is sent when the phone is online",
    sent: "Reported (number {id})",
    queue_title: "Waiting to send",
    queue_empty: "Nothing waiting to be sent",
    waiting: "waiting for the network",
    sending: "sending…",
    refused: "refused: {message}",
    discard: "Delete",
    recent_title: "My reports",
    recent_empty: "No reports yet",
    recent_offline: "Offline: showing the list as last loaded",
    online: "Online",
    offline: "Offline: reports are kept on the phone and sent when it is online",
    storage_failed: "Could not keep the report on the phone: {message}",
    status: {
      reported: "Reported",
      accepted: "Accepted",
      rejected: "Rejected",
      dispatched: "Dispatched",
      in_progress: "In progress",
      registered: "On the register",
      resolved: "Resolved",
      verified: "Verified",
      closed: "Closed",
    },
  },
};

// The language: `?lang=` in the URL (a link keeps it), else the server's default.
export function chooseLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (LANGUAGES.includes(asked)) return asked;
  const fallback = document.documentElement.dataset.defaultLanguage;
  return LANGUAGES.includes(fallback) ? fallback : "zh";
}

export function translator(language) {
  const texts = TEXTS[language];
  return (key, values = {}) =>
    (texts[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function statusName(language, status) {
  return TEXTS[language].status[status] ?? status;
}

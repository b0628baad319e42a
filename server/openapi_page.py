# ruff: noqa: E501 - embedded HTML/JS reads better unwrapped
"""``/api/v1/docs``: a small self-contained page that renders ``openapi.json`` (no CDN, no npm)."""

DOCS_SCRIPT = """const esc = (text) => String(text ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const schemaText = (schema) => esc(JSON.stringify(schema, null, 1));
// "#/components/responses/E400" → the shared answer it names (its meaning and schema).
const resolve = (doc, node) => node && node.$ref ? node.$ref.split("/").slice(1).reduce((at, key) => at[key], doc) : node;
fetch("openapi.json").then((r) => r.json()).then((doc) => {
  const parts = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const params = (op.parameters || []).map((p) =>
        `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${esc(p.schema && (p.schema.type || ""))}` +
        `${p.schema && p.schema.enum ? ": " + esc(p.schema.enum.join(", ")) : ""}</td><td>${esc(p.description)}</td></tr>`).join("");
      const body = op.requestBody ? Object.entries(op.requestBody.content).map(([type, media]) =>
        `<details><summary>body: ${esc(type)}</summary><pre>${schemaText(media.schema)}</pre></details>`).join("") : "";
      const responses = Object.entries(op.responses).map(([code, given]) => {
        const answer = resolve(doc, given);
        const shapes = Object.entries(answer.content || {}).map(([type, media]) => media.schema
          ? `<details><summary>${esc(type)}</summary><pre>${schemaText(resolve(doc, media.schema))}</pre></details>` : esc(type)).join("");
        return `<tr><td>${esc(code)}</td><td>${esc(answer.description)}${shapes}</td></tr>`;
      }).join("");
      parts.push(`<div class="op"><span class="method ${method}">${method}</span> <code>${esc(doc.servers[0].url + path)}</code>
        <div>${esc(op.summary)}</div>
        ${params ? `<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>${params}</table>` : ""}
        ${body}<table>${responses}</table></div>`);
    }
  }
  document.getElementById("ops").innerHTML = parts.join("");
});
"""

DOCS_PAGE_TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gridwatch API 接口文档</title>
<style>
  body { font: 15px/1.5 system-ui, "Noto Sans CJK SC", sans-serif; margin: 0 auto; max-width: 60rem;
         padding: 1rem; color: #1d2733; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
  .op { border: 1px solid #d6dde6; border-radius: 6px; margin: .75rem 0; padding: .5rem .75rem; }
  .method { display: inline-block; min-width: 3.5rem; font-weight: 700; text-transform: uppercase; }
  .get { color: #1464b4; } .post { color: #1c7c3c; }
  code, pre { font: 13px ui-monospace, monospace; background: #f3f5f8; padding: 0 .2rem; }
  pre { padding: .5rem; overflow: auto; max-height: 20rem; }
  table { border-collapse: collapse; width: 100%; margin: .25rem 0; }
  td, th { text-align: left; border-top: 1px solid #e5e9ef; padding: .2rem .4rem; vertical-align: top; }
  details summary { cursor: pointer; }
</style>
</head>
<body>
<h1>gridwatch API <small>/api/v1</small></h1>
<p>Machine-readable: <a href="openapi.json">openapi.json</a>. Authenticate with
<code>Authorization: Bearer &lt;token&gt;</code> (from <code>gridwatch users create</code>) or a login session
(<code>POST auth/login</code>; changes then need the <code>X-CSRF-Token</code> header).
Errors: <code>{"error": {"code", "message", "field"}}</code>.</p>
<div id="ops">Loading…</div>
<script>{script}</script>
</body>
</html>
"""

DOCS_PAGE = DOCS_PAGE_TEMPLATE.replace("{script}", DOCS_SCRIPT)

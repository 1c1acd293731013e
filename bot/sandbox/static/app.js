// The sandbox page: a small Slack client for what Cadence uses. It draws the workspace the stand-in keeps
// (GET /sandbox/state), follows its changes live (server-sent events from /sandbox/events), and turns
// every command, click and form into a call the sandbox sends on to the bot as Slack would.
"use strict";

const EMOJI = {
  white_check_mark: "✅", warning: "⚠️", x: "❌", zzz: "💤", tada: "🎉", no_entry: "⛔", hourglass: "⌛",
  hourglass_flowing_sand: "⏳", wave: "👋", runner: "🏃", rotating_light: "🚨", pencil: "📝",
  octagonal_sign: "🛑", leftwards_arrow_with_hook: "↩️", inbox_tray: "📥", outbox_tray: "📤", eyes: "👀",
  construction: "🚧", bust_in_silhouette: "👤", arrow_forward: "▶️", arrows_counterclockwise: "🔄",
  bar_chart: "📊", bell: "🔔", clipboard: "📋", dart: "🎯", file_cabinet: "🗄️", hammer_and_wrench: "🛠️",
  heavy_minus_sign: "➖", heavy_plus_sign: "➕", incoming_envelope: "📨", large_blue_circle: "🔵",
  large_green_circle: "🟢", mag: "🔍", memo: "📝", movie_camera: "🎥", palm_tree: "🌴", red_circle: "🔴",
  repeat: "🔁", scales: "⚖️", sunrise: "🌅", test_tube: "🧪", thinking_face: "🤔", traffic_light: "🚦",
  white_circle: "⚪", large_yellow_circle: "🟡", calendar: "📅", speech_balloon: "💬", lock: "🔒",
  chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉", information_source: "ℹ️",
};
const COLORS = ["#e8912d", "#2bac76", "#1264a3", "#cd2553", "#9f4bbf", "#3aa3e3", "#c57a00"];

const S = {
  me: null, channel: null, tab: "messages", thread: null,
  people: [], channels: [], messages: new Map(), views: new Map(), home: {}, occasions: [],
  command: "/scrum", bot: { id: "UBOT", name: "Cadence" }, timezone: "UTC", now: null, unread: {},
  dismissed: new Set(), errors: {}, drafts: {},
};

// ── small helpers ─────────────────────────────────────────────────────────────────────────────

const $ = (sel) => document.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "html") node.innerHTML = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}
function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
const unslack = (s) => s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
const key = (m) => `${m.channel}/${m.ts}`;
const dmOf = (user) => "D" + user.slice(1);
const personName = (id) => (id === S.bot.id ? S.bot.name : (S.people.find((p) => p.id === id) || {}).name || id);
function toast(text, error = false) {
  const t = el("div", { class: "toast" + (error ? " error" : "") }, text);
  $("#toasts").append(t);
  setTimeout(() => t.remove(), error ? 8000 : 4000);
}
async function call(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* an empty answer */ }
  if (!response.ok) {
    const detail = data.detail ?? data;
    toast(typeof detail === "string" ? detail : (detail.error || JSON.stringify(detail)), true);
    throw new Error(`${path} answered ${response.status}`);
  }
  return data;
}

// ── mrkdwn ────────────────────────────────────────────────────────────────────────────────────

function emoji(text) {
  return text.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
}
function mrkdwn(text) {
  const saved = [];
  const keep = (html) => `\u0000${saved.push(html) - 1}\u0000`;
  let s = String(text || "");
  s = s.replace(/```([\s\S]*?)```/g, (_, code) => keep(`<pre>${escapeHtml(unslack(code.replace(/^\n/, "")))}</pre>`));
  s = s.replace(/`([^`\n]+)`/g, (_, code) => keep(`<code>${escapeHtml(unslack(code))}</code>`));
  s = s.replace(/<([^<>\n]+)>/g, (_, inner) => keep(controlSequence(inner)));
  s = escapeHtml(unslack(s));
  s = emoji(s);
  s = s.replace(/(^|[\s(>])\*(?=\S)([^*\n]*?\S)\*(?=$|[\s).,!?:;<])/g, "$1<strong>$2</strong>");
  s = s.replace(/(^|[\s(>])_(?=\S)([^_\n]*?\S)_(?=$|[\s).,!?:;<])/g, "$1<em>$2</em>");
  s = s.replace(/(^|[\s(>])~(?=\S)([^~\n]*?\S)~(?=$|[\s).,!?:;<])/g, "$1<del>$2</del>");
  s = s.split("\n").map((line) => (line.startsWith("&gt; ") ? `<blockquote>${line.slice(5)}</blockquote>` : line)).join("\n");
  s = s.replace(/\n/g, "<br>").replace(/<\/blockquote><br>/g, "</blockquote>");
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => saved[Number(i)]);
}
function controlSequence(inner) {
  const [target, label] = inner.split("|", 2);
  if (target.startsWith("@")) {
    const id = target.slice(1);
    const mine = id === S.me ? " me" : "";
    return `<span class="mention${mine}" data-user="${escapeHtml(id)}">@${escapeHtml(label || personName(id))}</span>`;
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    const ch = S.channels.find((c) => c.id === id);
    return `<span class="mention">#${escapeHtml(label || (ch ? ch.name : id))}</span>`;
  }
  if (target.startsWith("!")) {
    const what = target.slice(1).split("^")[0];
    if (what.startsWith("date")) return escapeHtml(unslack(label || what));
    return `<span class="mention">@${escapeHtml(label || what)}</span>`;
  }
  const url = unslack(target);
  const safe = /^(https?:|mailto:)/i.test(url) ? url : "#";
  return `<a href="${escapeHtml(safe)}" target="_blank" rel="noopener">${escapeHtml(unslack(label || target))}</a>`;
}
function textObject(obj, cls = "") {
  if (!obj) return el("span");
  if (obj.type === "mrkdwn") return el("div", { class: "mrkdwn " + cls, html: mrkdwn(obj.text) });
  const text = obj.emoji === false ? obj.text : emoji(escapeHtml(obj.text || ""));
  return el("div", { class: "plain " + cls, html: text.replace(/\n/g, "<br>") });
}
const plain = (obj) => (obj ? (obj.type === "mrkdwn" ? unslack(obj.text) : obj.text) : "");

// ── Block Kit ─────────────────────────────────────────────────────────────────────────────────

// `where` says what an element belongs to: {channel, ts} for a message, {view} for a modal or Home.
function renderBlocks(blocks, where) {
  return (blocks || []).map((b) => el("div", { class: "block", "data-block-type": b.type, "data-block-id": b.block_id }, renderBlock(b, where)));
}
function renderBlock(b, where) {
  switch (b.type) {
    case "header": return textObject(b.text, "block-header");
    case "divider": return el("hr", { class: "block-divider" });
    case "section": {
      const main = el("div", { class: "section-main" });
      if (b.text) main.append(textObject(b.text));
      if (b.fields) main.append(el("div", { class: "fields" }, b.fields.map((f) => textObject(f))));
      const parts = [main];
      if (b.accessory) parts.push(renderElement(b.accessory, b, where));
      return el("div", { class: "block-section" }, parts);
    }
    case "context":
      return el("div", { class: "block-context" }, (b.elements || []).map((e) =>
        e.type === "image" ? el("img", { src: e.image_url, alt: e.alt_text || "" }) : textObject(e)));
    case "image":
      return el("figure", { class: "block-image", style: "margin:0" },
        b.title ? el("div", { class: "title" }, plain(b.title)) : null,
        el("img", { src: b.image_url || (b.slack_file || {}).url, alt: b.alt_text || "" }));
    case "actions":
      return el("div", { class: "block-actions" }, (b.elements || []).map((e) => renderElement(e, b, where)));
    case "input": return renderInput(b, where);
    case "rich_text": return el("div", { class: "mrkdwn" }, richText(b));
    default: return el("div", { class: "unsupported" }, `[a ${b.type} block]`);
  }
}
function richText(b) {
  const words = [];
  const walk = (node) => {
    if (node.type === "text") words.push(node.text);
    else if (node.type === "user") words.push("@" + personName(node.user_id));
    else if (node.type === "link") words.push(node.text || node.url);
    for (const child of node.elements || []) walk(child);
  };
  walk(b);
  return words.join("");
}
function options(e) {
  if (e.option_groups) return e.option_groups.flatMap((g) => g.options);
  return e.options || [];
}
function renderElement(e, block, where) {
  const inModal = where.view && where.view.type === "modal";
  const dispatch = (selected) => act(e, block, where, selected);
  switch (e.type) {
    case "button": {
      const b = el("button", { type: "button", class: "el-button " + (e.style || ""), "data-action-id": e.action_id },
        emoji(plain(e.text)));
      b.addEventListener("click", async () => {
        if (e.url) window.open(e.url, "_blank", "noopener");
        if (e.confirm && !(await confirmDialog(e.confirm))) return;
        b.disabled = true;
        try { await dispatch(null); } finally { b.disabled = false; }
      });
      return b;
    }
    case "static_select": case "external_select": {
      const select = el("select", { class: "el-select", "data-action-id": e.action_id, "aria-label": plain(e.placeholder) || e.action_id },
        el("option", { value: "" }, plain(e.placeholder) || "Select an item"),
        options(e).map((o) => el("option", { value: o.value, selected: e.initial_option && e.initial_option.value === o.value }, plain(o.text))));
      if (!inModal || block.type !== "input" || block.dispatch_action) {
        select.addEventListener("change", async () => {
          const o = options(e).find((x) => x.value === select.value);
          if (o && block.type !== "input") await dispatch({ text: o.text, value: o.value });
        });
      }
      return select;
    }
    case "users_select": case "conversations_select": case "channels_select": {
      const choices = e.type === "users_select"
        ? S.people.map((p) => [p.id, p.name])
        : S.channels.map((c) => [c.id, "#" + c.name]);
      const initial = e.initial_user || e.initial_conversation || e.initial_channel;
      const select = el("select", { class: "el-select", "data-action-id": e.action_id, "aria-label": plain(e.placeholder) || e.action_id },
        el("option", { value: "" }, plain(e.placeholder) || "Select"),
        choices.map(([id, name]) => el("option", { value: id, selected: id === initial }, name)));
      if (block.type !== "input") select.addEventListener("change", () => select.value && dispatch(select.value));
      return select;
    }
    case "multi_static_select": case "multi_users_select": {
      const choices = e.type === "multi_users_select"
        ? S.people.map((p) => ({ value: p.id, text: { type: "plain_text", text: p.name } }))
        : options(e);
      const initial = new Set((e.initial_options || []).map((o) => o.value).concat(e.initial_users || []));
      return el("select", { class: "el-select", multiple: true, "data-action-id": e.action_id, "aria-label": plain(e.placeholder) || e.action_id },
        choices.map((o) => el("option", { value: o.value, selected: initial.has(o.value) }, plain(o.text))));
    }
    case "overflow": {
      const wrap = el("div", { class: "el-overflow" });
      const menu = el("div", { class: "overflow-menu", hidden: true }, options(e).map((o) =>
        el("button", { type: "button", onclick: async () => { menu.hidden = true; await dispatch({ text: o.text, value: o.value }); } }, plain(o.text))));
      wrap.append(el("button", { type: "button", "aria-label": "More actions", onclick: () => { menu.hidden = !menu.hidden; } }, "⋮"), menu);
      return wrap;
    }
    case "datepicker": {
      const input = el("input", { type: "date", class: "el-date", value: e.initial_date || "", "data-action-id": e.action_id });
      if (block.type !== "input") input.addEventListener("change", () => input.value && dispatch(input.value));
      return input;
    }
    case "timepicker":
      return el("input", { type: "time", class: "el-date", value: e.initial_time || "", "data-action-id": e.action_id });
    case "checkboxes": case "radio_buttons": {
      const radio = e.type === "radio_buttons";
      const initial = new Set((e.initial_options || (e.initial_option ? [e.initial_option] : [])).map((o) => o.value));
      const name = `${block.block_id}.${e.action_id}`;
      const box = el("div", { class: radio ? "el-radios" : "el-checkboxes", "data-action-id": e.action_id },
        options(e).map((o) => el("label", {},
          el("input", { type: radio ? "radio" : "checkbox", name, value: o.value, checked: initial.has(o.value) }),
          " ", textObject(o.text, "inline"), o.description ? el("div", { class: "hint" }, plain(o.description)) : null)));
      if (block.type !== "input") {
        box.addEventListener("change", () => {
          const chosen = options(e).filter((o) => box.querySelector(`input[value="${CSS.escape(o.value)}"]`).checked)
            .map((o) => ({ text: o.text, value: o.value }));
          dispatch(radio ? chosen[0] : chosen);
        });
      }
      return box;
    }
    case "plain_text_input": {
      const attrs = {
        class: "el-text", "data-action-id": e.action_id, placeholder: plain(e.placeholder),
        maxlength: e.max_length, minlength: e.min_length,
      };
      if (e.multiline) return el("textarea", attrs, e.initial_value || "");
      return el("input", { ...attrs, type: "text", value: e.initial_value || "" });
    }
    case "number_input":
      return el("input", {
        type: "number", class: "el-number", "data-action-id": e.action_id, value: e.initial_value || "",
        step: e.is_decimal_allowed ? "any" : "1", min: e.min_value, max: e.max_value, placeholder: plain(e.placeholder),
      });
    case "email_text_input": case "url_text_input":
      return el("input", { type: e.type === "email_text_input" ? "email" : "url", class: "el-text", "data-action-id": e.action_id, value: e.initial_value || "" });
    case "image":
      return el("img", { src: e.image_url, alt: e.alt_text || "", style: "width:72px;height:72px;border-radius:4px" });
    default:
      return el("span", { class: "unsupported" }, `[a ${e.type} element]`);
  }
}
function renderInput(b, where) {
  const error = (S.errors[where.view && where.view.id] || {})[b.block_id];
  const label = el("label", {}, plain(b.label), b.optional ? el("span", { class: "optional" }, " (optional)") : null);
  return el("div", { class: "input-block" + (error ? " has-error" : ""), "data-block-id": b.block_id },
    label, renderElement(b.element, b, where),
    b.hint ? el("div", { class: "hint" }, plain(b.hint)) : null,
    error ? el("div", { class: "field-error", role: "alert" }, error) : null);
}

// ── what a click sends ────────────────────────────────────────────────────────────────────────

async function act(element, block, where, selected) {
  const body = { user: S.me, element, block_id: block.block_id || "", selected };
  if (where.view) body.view_id = where.view.id;
  else Object.assign(body, { channel: where.channel, ts: where.ts });
  const answer = await call("/sandbox/action", body);
  if (!answer.ok) toast(`The app answered HTTP ${answer.status}; Slack would show "failed to handle the action".`, true);
}
function stateOf(view, root) {
  const values = {};
  for (const b of view.blocks || []) {
    if (b.type !== "input") continue;
    const e = b.element;
    const node = root.querySelector(`.input-block[data-block-id="${CSS.escape(b.block_id)}"] [data-action-id="${CSS.escape(e.action_id)}"]`);
    values[b.block_id] = { [e.action_id]: elementState(e, node) };
  }
  return values;
}
function elementState(e, node) {
  const v = node ? node.value : "";
  switch (e.type) {
    case "plain_text_input": case "email_text_input": case "url_text_input":
      return { type: e.type, value: v === "" ? null : v };
    case "number_input": return { type: e.type, value: v === "" ? null : v };
    case "static_select": {
      const o = options(e).find((x) => x.value === v);
      return { type: e.type, selected_option: o ? { text: o.text, value: o.value } : null };
    }
    case "multi_static_select": {
      const chosen = new Set([...node.selectedOptions].map((o) => o.value));
      return { type: e.type, selected_options: options(e).filter((o) => chosen.has(o.value)).map((o) => ({ text: o.text, value: o.value })) };
    }
    case "users_select": return { type: e.type, selected_user: v || null };
    case "multi_users_select": return { type: e.type, selected_users: [...node.selectedOptions].map((o) => o.value) };
    case "conversations_select": return { type: e.type, selected_conversation: v || null };
    case "channels_select": return { type: e.type, selected_channel: v || null };
    case "datepicker": return { type: e.type, selected_date: v || null };
    case "timepicker": return { type: e.type, selected_time: v || null };
    case "checkboxes": case "radio_buttons": {
      const chosen = options(e).filter((o) => node.querySelector(`input[value="${CSS.escape(o.value)}"]`).checked)
        .map((o) => ({ text: o.text, value: o.value }));
      return e.type === "checkboxes" ? { type: e.type, selected_options: chosen } : { type: e.type, selected_option: chosen[0] || null };
    }
    default: return { type: e.type };
  }
}
function isEmpty(state) {
  return !(state.value || state.selected_option || state.selected_date || state.selected_user || state.selected_time
    || state.selected_conversation || state.selected_channel
    || (state.selected_options && state.selected_options.length) || (state.selected_users && state.selected_users.length));
}

// ── modals ────────────────────────────────────────────────────────────────────────────────────

function topView() {
  const mine = [...S.views.values()].filter((v) => v.user === S.me).sort((a, b) => a.stack - b.stack);
  return mine[mine.length - 1] || null;
}
function renderModal() {
  const root = $("#modal-root");
  const view = topView();
  const shown = root.querySelector(".modal[data-view-id]");
  if (shown && view && shown.dataset.viewId === view.id && shown.dataset.hash === view.hash) keepDrafts(view, shown);
  root.querySelectorAll(".backdrop:not(.confirm)").forEach((n) => n.remove());
  if (!view) return;
  const form = el("form", { class: "modal", role: "dialog", "aria-modal": "true", "aria-label": plain(view.title), "data-view-id": view.id, "data-hash": view.hash, "data-callback-id": view.callback_id || "" });
  form.append(
    el("div", { class: "modal-head" }, el("h2", {}, plain(view.title)),
      el("button", { type: "button", "aria-label": "Close", onclick: () => closeModal(view) }, "×")),
    el("div", { class: "modal-body" }, renderBlocks(view.blocks, { view })),
    el("div", { class: "modal-foot" },
      el("button", { type: "button", class: "cancel", onclick: () => closeModal(view) }, plain(view.close) || "Cancel"),
      view.submit ? el("button", { type: "submit", class: "submit" }, plain(view.submit)) : null));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const values = stateOf(view, form);
    const missing = {};
    for (const b of view.blocks || []) {
      if (b.type === "input" && !b.optional && isEmpty(values[b.block_id][b.element.action_id])) missing[b.block_id] = "Please complete this required field.";
    }
    if (Object.keys(missing).length) { keepDrafts(view, form); S.errors[view.id] = missing; render(); return; }
    const submit = form.querySelector("button.submit");
    submit.disabled = true;
    try {
      const answer = await call("/sandbox/submit", { user: S.me, view_id: view.id, values });
      if (!answer.ok) toast(`The app answered HTTP ${answer.status}; Slack would show "We had some trouble connecting".`, true);
      else if (Object.keys(answer.errors || {}).length) { keepDrafts(view, form); S.errors[view.id] = answer.errors; render(); }
      else delete S.errors[view.id];
    } finally { submit.disabled = false; }
  });
  root.append(el("div", { class: "backdrop" }, form));
  restoreDrafts(view, form);
}
// What the person typed survives a redraw (to show errors), as in Slack.
function keepDrafts(view, form) { S.drafts[view.id] = stateOf(view, form); }
function restoreDrafts(view, form) {
  const drafts = S.drafts[view.id];
  if (!drafts) return;
  for (const b of view.blocks || []) {
    if (b.type !== "input" || !drafts[b.block_id]) continue;
    const state = drafts[b.block_id][b.element.action_id];
    const node = form.querySelector(`.input-block[data-block-id="${CSS.escape(b.block_id)}"] [data-action-id="${CSS.escape(b.element.action_id)}"]`);
    if (!node || !state) continue;
    if ("value" in state) node.value = state.value ?? "";
    else if ("selected_option" in state && node.tagName === "SELECT") node.value = state.selected_option ? state.selected_option.value : "";
    else if ("selected_date" in state) node.value = state.selected_date || "";
    else if ("selected_user" in state) node.value = state.selected_user || "";
    else if ("selected_options" in state && node.querySelectorAll) {
      const chosen = new Set(state.selected_options.map((o) => o.value));
      node.querySelectorAll("input, option").forEach((i) => { if ("checked" in i && i.type) i.checked = chosen.has(i.value); else i.selected = chosen.has(i.value); });
    }
  }
}
async function closeModal(view) {
  delete S.errors[view.id]; delete S.drafts[view.id];
  await call("/sandbox/close", { user: S.me, view_id: view.id });
}
function confirmDialog(c) {
  return new Promise((resolve) => {
    const done = (answer) => { backdrop.remove(); resolve(answer); };
    const backdrop = el("div", { class: "backdrop confirm" },
      el("div", { class: "modal", role: "alertdialog", "aria-label": plain(c.title) },
        el("div", { class: "modal-head" }, el("h2", {}, plain(c.title))),
        el("div", { class: "modal-body" }, textObject(c.text)),
        el("div", { class: "modal-foot" },
          el("button", { type: "button", class: "cancel", onclick: () => done(false) }, plain(c.deny) || "Cancel"),
          el("button", { type: "button", class: "submit", onclick: () => done(true) }, plain(c.confirm) || "Yes"))));
    $("#modal-root").append(backdrop);
  });
}

// ── messages ──────────────────────────────────────────────────────────────────────────────────

function visible(m) { return !m.ephemeral_to || m.ephemeral_to === S.me; }
function isReply(m) { return m.thread_ts && m.thread_ts !== m.ts; }
function avatar(user) {
  const name = personName(user);
  const color = user === S.bot.id ? "#4a154b" : COLORS[[...user].reduce((a, c) => a + c.charCodeAt(0), 0) % COLORS.length];
  return el("div", { class: "avatar", style: `background:${color}`, "aria-hidden": "true" }, name.slice(0, 1).toUpperCase());
}
function timeOf(m) {
  return new Date(m.posted_at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZone: S.timezone });
}
function renderMessage(m, { inThread = false } = {}) {
  const own = m.ephemeral_to && m.user === S.me;  // the command the person typed, echoed to them
  const where = { channel: m.channel, ts: m.ts };
  const body = el("div", { class: "msg-body" },
    el("div", { class: "msg-head" }, el("span", { class: "who" }, personName(m.user)),
      m.user === S.bot.id ? el("span", { class: "app" }, "APP") : null,
      el("span", { class: "when" }, timeOf(m)), m.edited ? el("span", { class: "edited" }, "(edited)") : null));
  if (own) body.append(el("div", { class: "command-echo" }, m.text));
  else if (m.blocks && m.blocks.length) body.append(...renderBlocks(m.blocks, where));
  else if (m.text) body.append(el("div", { class: "mrkdwn", html: mrkdwn(m.text) }));
  for (const f of m.files || []) {
    body.append(el("div", { class: "file" },
      f.image ? el("img", { src: f.url, alt: f.title || f.name }) : null,
      el("div", { class: "name" }, el("a", { href: f.url, target: "_blank" }, f.title || f.name))));
  }
  if (!inThread) {
    const replies = [...S.messages.values()].filter((r) => r.channel === m.channel && r.thread_ts === m.ts && r.ts !== m.ts && visible(r));
    if (replies.length) {
      body.append(el("button", { type: "button", class: "replies", onclick: () => openThread(m) },
        `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`));
    }
  }
  if (m.ephemeral_to && !own) {
    body.append(el("div", { class: "ephemeral-note" }, "👁 Only visible to you · ",
      el("button", { type: "button", onclick: () => { S.dismissed.add(key(m)); render(); } }, "Dismiss")));
  }
  return el("div", {
    class: "msg" + (m.ephemeral_to ? " ephemeral" : "") + (own ? " mine-command" : ""),
    "data-ts": m.ts, "data-channel": m.channel, "data-ephemeral": m.ephemeral_to ? "true" : null,
  }, avatar(m.user), body);
}
function channelMessages(channel) {
  return [...S.messages.values()]
    .filter((m) => m.channel === channel && visible(m) && !isReply(m) && !S.dismissed.has(key(m)))
    .sort((a, b) => (a.ts < b.ts ? -1 : 1));
}

// ── the page ──────────────────────────────────────────────────────────────────────────────────

function channelName(id) {
  if (id === dmOf(S.me)) return S.bot.name;
  const c = S.channels.find((x) => x.id === id);
  return c ? "# " + c.name : id;
}
function renderSidebar() {
  const list = $("#channel-list");
  list.replaceChildren(...S.channels.map((c) => sideItem(c.id, "# " + c.name)));
  $("#app-list").replaceChildren(sideItem(dmOf(S.me), S.bot.name));
}
function sideItem(id, label) {
  const n = S.unread[id] || 0;
  return el("li", {
    class: (S.channel === id ? "active " : "") + (n ? "unread" : ""), "data-channel": id, role: "link",
    onclick: () => openChannel(id, id === dmOf(S.me) && S.channel !== id ? "home" : S.tab),
  }, el("span", {}, label), n ? el("span", { class: "badge" }, String(n)) : null);
}
function renderMain() {
  const isApp = S.channel === dmOf(S.me);
  $("#channel-title").textContent = channelName(S.channel);
  const tabs = $("#tabs");
  tabs.replaceChildren();
  if (isApp) {
    for (const [tab, label] of [["home", "Home"], ["messages", "Messages"]]) {
      tabs.append(el("button", { type: "button", class: S.tab === tab ? "active" : "", onclick: () => openChannel(S.channel, tab) }, label));
    }
  }
  const showHome = isApp && S.tab === "home";
  $("#home").hidden = !showHome;
  $("#messages").hidden = showHome;
  $("#composer").hidden = showHome;
  if (showHome) {
    const view = S.home[S.me];
    $("#home").replaceChildren(...(view ? renderBlocks(view.blocks, { view: { ...view, type: "home" } }) : [el("div", { class: "empty" }, "Loading App Home…")]));
    return;
  }
  const box = $("#messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  const list = channelMessages(S.channel);
  box.replaceChildren(...(list.length ? list.map((m) => renderMessage(m)) : [el("div", { class: "empty" }, "No messages here yet.")]));
  if (atBottom || S.scrollNext) { box.scrollTop = box.scrollHeight; S.scrollNext = false; }
  $("#composer-input").placeholder = `Message ${channelName(S.channel)} — try ${S.command} help`;
}
function renderThread() {
  const pane = $("#thread");
  if (!S.thread) { pane.hidden = true; return; }
  const parent = S.messages.get(S.thread);
  if (!parent) { S.thread = null; pane.hidden = true; return; }
  pane.hidden = false;
  const replies = [...S.messages.values()].filter((r) => r.channel === parent.channel && r.thread_ts === parent.ts && r.ts !== parent.ts && visible(r))
    .sort((a, b) => (a.ts < b.ts ? -1 : 1));
  $("#thread-messages").replaceChildren(renderMessage(parent, { inThread: true }),
    el("div", { class: "thread-divider" }, `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`),
    ...replies.map((r) => renderMessage(r, { inThread: true })));
}
function renderClock() {
  if (!S.now) return;
  const when = new Date(S.now);
  $("#clock").textContent = when.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: S.timezone }) + ` (${S.timezone})`;
}
function render() {
  renderSidebar(); renderMain(); renderThread(); renderClock();
  const view = topView();
  const shape = view ? `${view.id}|${view.hash}|${JSON.stringify(S.errors[view.id] || {})}` : "";
  if (shape !== S.modalShape) { S.modalShape = shape; renderModal(); }
}

function openChannel(id, tab = "messages") {
  S.channel = id; S.tab = tab; S.unread[id] = 0; S.scrollNext = true;
  const url = new URL(location.href);
  url.searchParams.set("channel", id);
  history.replaceState(null, "", url);
  if (id === dmOf(S.me) && tab === "home") call("/sandbox/home", { user: S.me }).catch(() => {});
  render();
}
function openThread(m) { S.thread = key(m); renderThread(); }

function setUser(id) {
  S.me = id;
  const url = new URL(location.href);
  url.searchParams.set("as", id);
  history.replaceState(null, "", url);
  $("#acting-user").value = id;
  if (S.channel && S.channel.startsWith("D")) S.channel = dmOf(id);
  render();
}

// ── the tour: a walk through planning, readiness, a standup, an approval and a drift alert ─────────

function tourSteps() {
  const first = (role) => (S.people.find((p) => p.role === role) || S.people[0]).id;
  const team = S.channels[0] ? S.channels[0].id : null;
  const reviews = S.channels[1] ? S.channels[1].id : team;
  const standup = S.occasions.find((o) => o.kind === "standup");
  const member = S.people.filter((p) => p.role === "member");
  return [
    ["See the sprint plan (as the lead)", () => { setUser(first("lead")); openChannel(team); draft(`${S.command} sprint plan`); }],
    ["Fill a story's readiness", () => { setUser((member[1] || member[0] || S.people[0]).id); openChannel(team); draft(`${S.command} ready S-3`); }],
    ["Run the standup and answer it", async () => {
      setUser((member[0] || S.people[0]).id); openChannel(team);
      if (standup) { $("#fire-kind").value = `${standup.team}|standup`; $("#fire").click(); }
    }],
    ["Approve the model review (as the approver)", () => { setUser(first("approver")); openChannel(reviews); }],
    ["Acknowledge the drift alert", () => { setUser(first("lead")); openChannel(team); }],
    ["Try the same as an outsider", () => { setUser(first("outsider")); openChannel(reviews); }],
    ["Open App Home", () => openChannel(dmOf(S.me), "home")],
  ];
}
function draft(text) {
  const input = $("#composer-input");
  input.value = text;
  input.focus();
  toast("Press Enter to send it.");
}
function renderTour() {
  $("#tour").replaceChildren(...tourSteps().map(([label, go]) => el("li", {}, el("button", { type: "button", onclick: go }, label))));
}

// ── live updates ──────────────────────────────────────────────────────────────────────────────

function apply(event) {
  if (event.type === "reset") { S.messages.clear(); S.views.clear(); S.home = {}; }
  switch (event.type) {
    case "message": {
      const m = event.message;
      const k = key(m);
      const isNew = !S.messages.has(k);
      S.messages.set(k, m);
      if (isNew && visible(m) && m.channel !== S.channel && !isReply(m) && m.user !== S.me) S.unread[m.channel] = (S.unread[m.channel] || 0) + 1;
      break;
    }
    case "deleted": S.messages.delete(`${event.channel}/${event.ts}`); break;
    case "view": {
      const old = S.views.get(event.view.id);
      if (old && old.hash !== event.view.hash) { delete S.errors[event.view.id]; delete S.drafts[event.view.id]; }
      S.views.set(event.view.id, event.view);
      break;
    }
    case "view_closed": S.views.delete(event.view_id); delete S.errors[event.view_id]; delete S.drafts[event.view_id]; break;
    case "home": S.home[event.user] = event.view; break;
    case "clock": S.now = event.now; break;
    case "reset": resync(); return;
    default: return;
  }
  render();
}
// Events that arrive while the state is being fetched wait, then apply on top of it: the stream is open
// before the fetch starts, so nothing falls between the two (also after a reconnect or a reset).
let resyncing = null;
const waiting = [];
async function resync() {
  if (resyncing) return resyncing;
  resyncing = (async () => {
    try { await load(); } finally { resyncing = null; }
    for (const event of waiting.splice(0)) apply(event);
    document.body.dataset.live = "true";
  })();
  return resyncing;
}
function listen() {
  const source = new EventSource("/sandbox/events");
  source.onmessage = (ev) => { const event = JSON.parse(ev.data); if (resyncing) waiting.push(event); else apply(event); };
  source.onopen = () => resync();
  source.onerror = () => { document.body.dataset.live = "false"; };
}

async function load() {
  const state = await (await fetch("/sandbox/state")).json();
  Object.assign(S, {
    people: state.people, channels: state.channels, home: state.home, occasions: state.occasions,
    command: state.command, bot: state.bot, timezone: state.timezone, now: state.now,
  });
  S.messages = new Map(state.messages.map((m) => [key(m), m]));
  S.views = new Map(state.views.map((v) => [v.id, v]));
  const params = new URL(location.href).searchParams;
  const who = $("#acting-user");
  who.replaceChildren(...S.people.map((p) => el("option", { value: p.id }, `${p.name} (${p.role})`)));
  const wanted = params.get("as");
  S.me = S.people.some((p) => p.id === wanted) ? wanted : (S.me && S.people.some((p) => p.id === S.me) ? S.me : S.people[0].id);
  who.value = S.me;
  $("#fire-kind").replaceChildren(...S.occasions.map((o) => el("option", { value: `${o.team}|${o.kind}` }, `${o.team} · ${o.kind.replace(/_/g, " ")}`)));
  renderTour();
  const channel = params.get("channel");
  S.channel = channel && (S.channels.some((c) => c.id === channel) || channel.startsWith("D")) ? (channel.startsWith("D") ? dmOf(S.me) : channel) : S.channels[0].id;
  render();
}

function wire() {
  $("#acting-user").addEventListener("change", (ev) => setUser(ev.target.value));
  const input = $("#composer-input");
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("#composer").requestSubmit(); } });
  $("#composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    S.scrollNext = true;
    if (text.startsWith("/")) await call("/sandbox/command", { user: S.me, channel: S.channel, text });
    else await call("/sandbox/post", { user: S.me, channel: S.channel, text });
  });
  const reply = $("#thread-input");
  reply.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("#thread-composer").requestSubmit(); } });
  $("#thread-composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const parent = S.messages.get(S.thread);
    const text = reply.value.trim();
    if (!parent || !text) return;
    reply.value = "";
    await call("/sandbox/post", { user: S.me, channel: parent.channel, text, thread_ts: parent.ts });
  });
  $("#thread-close").addEventListener("click", () => { S.thread = null; renderThread(); });
  $("#fire").addEventListener("click", async () => {
    const [team, kind] = $("#fire-kind").value.split("|");
    const answer = await call("/sandbox/fire", { team, kind });
    toast(answer.status === "done" ? `Ran ${team} ${kind.replace(/_/g, " ")}.` : `${kind.replace(/_/g, " ")}: ${answer.status}${answer.note ? " (" + answer.note + ")" : ""}`);
  });
  $("#advance").addEventListener("click", async () => {
    const answer = await call("/sandbox/advance", { days: 1 });
    S.now = answer.now; renderClock();
    toast(`Moved a day on; ${answer.ran} scheduled ${answer.ran === 1 ? "event" : "events"} ran.`);
  });
  $("#drift-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const answer = await call("/sandbox/drift", {
      model: $("#drift-model").value, metric: $("#drift-metric").value, feature: $("#drift-feature").value,
      value: Number($("#drift-value").value),
    });
    const a = answer.answer || {};
    if (answer.status !== 200) toast(`The API refused the reading: ${JSON.stringify(a.detail || a)}`, true);
    else toast(`Reading stored: ${a.stored}; opened ${(a.opened || []).join(", ") || "none"}; changed ${(a.changed || []).join(", ") || "none"}.`);
  });
  $("#reset").addEventListener("click", async () => {
    const sure = await confirmDialog({ title: { type: "plain_text", text: "Reset the demo?" }, text: { type: "mrkdwn", text: "Every story, sprint, review and message goes, and the demo is seeded again." }, confirm: { type: "plain_text", text: "Reset" } });
    if (sure) { await call("/sandbox/reset", {}); toast("The demo was reset."); }
  });
  document.addEventListener("click", (ev) => {
    if (!ev.target.closest(".el-overflow")) document.querySelectorAll(".overflow-menu").forEach((m) => { m.hidden = true; });
  });
}

wire();
listen();

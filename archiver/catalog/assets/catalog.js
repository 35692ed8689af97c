/* The archiver catalog: turns window.ARCHIVER_CATALOG (index-data.js) into cards.
 *
 * Every text from the archive reaches the page through textContent or an attribute, never as
 * HTML, so a title like <img onerror=...> shows as text. Cards are rendered a page at a time as
 * the reader scrolls, which keeps 20,000 videos as quick as 20.
 *
 * The full data of a large archive takes seconds to parse, so the page first shows the newest
 * screenful from index-first.js (window.ARCHIVER_CATALOG_FIRST), then loads index-data.js once
 * that screen is painted and takes over with every item. Until then, a search, a filter, the
 * other order or the templates say they are loading.
 */
(function () {
  "use strict";

  const PAGE = 60;
  const root = document.documentElement;
  const byId = (id) => document.getElementById(id);
  const ui = {
    summary: byId("summary"), search: byId("search"), source: byId("source"), sort: byId("sort"),
    count: byId("count"), notice: byId("notice"), grid: byId("grid"), more: byId("more"),
    sentinel: byId("sentinel"), tasksView: byId("tasks-view"), tasksEmpty: byId("tasks-empty"),
    templatesView: byId("templates-view"), templateList: byId("template-list"),
    templatesEmpty: byId("templates-empty"), chip: byId("filter-chip"),
    chipText: byId("filter-chip-text"), chipClear: byId("filter-chip-clear"),
    player: byId("player"), video: byId("video"), noVideo: byId("no-video"),
    picture: byId("picture"),
    playerTitle: byId("player-title"), playerMeta: byId("player-meta"),
    playerProblems: byId("player-problems"), playerPrompt: byId("player-prompt"),
    playerLinks: byId("player-links"), playerFiles: byId("player-files"),
  };
  const allSources = ui.source.options[0];
  // The full data script is added by this script, which the CSP allows only with its nonce.
  const nonce = document.currentScript ? document.currentScript.nonce : "";

  const state = { view: "tasks", q: "", source: "", sort: "new", template: "" };
  let data = null;
  let full = false;
  let tasks = [];
  let templates = [];
  let templateByKey = new Map();
  let tasksByTemplate = new Map();
  let list = [];
  let shown = 0;
  let playing = null;

  readHash();
  bindControls();
  const first = window.ARCHIVER_CATALOG_FIRST;
  if (usable(first) && first.counts) {
    take(first);
    render();
    root.dataset.state = "first";
    // After the first screen is painted: a frame, then a task (rAF runs before the paint).
    // The timer is for a page opened in a hidden tab, where frames wait.
    let started = false;
    const start = () => {
      if (!started) loadFull();
      started = true;
    };
    requestAnimationFrame(() => setTimeout(start, 0));
    setTimeout(start, 500);
  } else {
    ui.count.textContent = "Loading…";
    loadFull();
  }

  function usable(candidate) {
    return Boolean(candidate) && Array.isArray(candidate.tasks);
  }

  function loadFull() {
    const script = document.createElement("script");
    script.nonce = nonce;
    script.src = root.dataset.full;
    script.addEventListener("load", takeOver);
    script.addEventListener("error", takeOver);
    document.body.append(script);
  }

  function takeOver() {
    const whole = window.ARCHIVER_CATALOG;
    if (!usable(whole)) {
      showNotice("The catalog data (index-data.js) is missing or unreadable. " +
        "Run \"archiver index\" to rebuild it.");
      ui.count.textContent = data ? "Showing only the newest " + tasks.length + " videos" : "";
      root.dataset.state = "ready";
      return;
    }
    const keep = shown;
    take(whole);
    full = true;
    if (!templateByKey.has(state.template)) state.template = "";
    render();
    // The reader may have scrolled through the first screen: keep as many cards.
    while (state.view === "tasks" && shown < Math.min(keep, list.length)) appendPage();
    root.dataset.state = "ready";
  }

  // Makes `source` (the first screen's data or the full data) what the page shows.
  function take(source) {
    data = source;
    if (data.token !== root.dataset.token) {
      showNotice("The catalog was rebuilt while this page was loading. Reload the page.");
    }
    tasks = data.tasks;
    templates = data.templates || [];
    templateByKey = new Map();
    tasksByTemplate = new Map();
    for (const template of templates) {
      template.key = template.source + "/" + template.id;
      template.hay = haystack([template.id, template.title, template.prompt, template.author]);
      templateByKey.set(template.key, template);
      tasksByTemplate.set(template.key, []);
    }
    for (const task of tasks) {
      if (task.template !== undefined) {
        task.templateKey = task.source + "/" + task.template;
        const siblings = tasksByTemplate.get(task.templateKey);
        if (siblings) siblings.push(task);
        if (!task.title && templateByKey.has(task.templateKey)) {
          task.title = templateByKey.get(task.templateKey).title;
        }
      }
      task.hay = haystack([task.id, task.title, task.prompt]);
    }
    fillSources();
  }

  // Whether the first screen's data is what the current view needs: the newest videos.
  function firstScreenWill() {
    return state.view === "tasks" && !state.q && !state.source && state.sort === "new" &&
      !state.template;
  }

  // --- helpers ---

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function localHref(value) {
    // The data holds only relative, percent-encoded paths; refuse anything else all the same.
    if (typeof value !== "string" || value === "") return null;
    if (/^[a-z][a-z0-9+.-]*:/i.test(value) || value[0] === "/" || value[0] === "\\") return null;
    return value;
  }

  function haystack(parts) {
    return parts.filter((part) => part !== undefined && part !== null).join("\n").toLowerCase();
  }

  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
  }

  function formatDate(iso) {
    if (!iso) return "Undated";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
  }

  function formatDuration(length) {
    const seconds = Math.round(length);  // the data holds seconds, whatever the service used
    const rest = String(seconds % 60).padStart(2, "0");
    return Math.floor(seconds / 60) + ":" + rest;
  }

  // The same units as archiver's own output (archiver.output.human_bytes): binary, one decimal.
  function formatBytes(size) {
    if (typeof size !== "number") return "";
    const units = ["B", "KiB", "MiB", "GiB"];
    let value = size;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit === 0 ? String(value) : value.toFixed(1)) + " " + units[unit];
  }

  function labelOf(item) {
    const source = (data.sources || {})[item.source];
    return source && typeof source.label === "string" ? source.label : "";
  }

  function titleOf(item) {
    if (item.title) return item.title;
    const label = labelOf(item);
    if (item.picture) return label || "Untitled picture";
    if (!label || /video$/i.test(label)) return label || "Untitled video";
    return label + " video";
  }

  function byDate(order) {
    const sign = order === "old" ? 1 : -1;
    return (a, b) => {
      // Undated items go last whichever way the dates run.
      if (!a.created || !b.created) return (a.created ? -1 : 0) + (b.created ? 1 : 0);
      if (a.created !== b.created) return a.created < b.created ? -sign : sign;
      return a.id < b.id ? -sign : a.id > b.id ? sign : 0;
    };
  }

  function terms() {
    return state.q.toLowerCase().split(/\s+/).filter(Boolean);
  }

  // --- state and controls ---

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    state.view = params.get("view") === "templates" ? "templates" : "tasks";
    state.q = params.get("q") || "";
    state.source = params.get("source") || "";
    state.sort = params.get("sort") === "old" ? "old" : "new";
    state.template = params.get("template") || "";
  }

  function writeHash() {
    const params = new URLSearchParams();
    for (const key of ["view", "q", "source", "sort", "template"]) {
      const defaults = { view: "tasks", sort: "new" };
      if (state[key] && state[key] !== defaults[key]) params.set(key, state[key]);
    }
    const hash = params.toString();
    history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
  }

  function fillSources() {
    const sources = data.sources || {};
    ui.source.replaceChildren(allSources);
    for (const name of Object.keys(sources).sort()) {
      // The kind of work names the source too: "ai (AI creation, 12)".
      const label = typeof sources[name].label === "string" ? sources[name].label + ", " : "";
      const count = sources[name].tasks.toLocaleString();
      const option = el("option", "", name + " (" + label + count + ")");
      option.value = name;
      ui.source.append(option);
    }
    if (!Object.prototype.hasOwnProperty.call(sources, state.source)) state.source = "";
    ui.source.value = state.source;
    // The first screen's data holds a few items, and the counts of all.
    const counts = data.counts || { tasks: tasks.length, templates: templates.length };
    const totalBytes = Object.values(sources).reduce((sum, source) => sum + source.bytes, 0);
    ui.summary.textContent = [
      counts.tasks.toLocaleString() + (counts.tasks === 1 ? " video" : " videos"),
      counts.templates.toLocaleString() + (counts.templates === 1 ? " template" : " templates"),
      formatBytes(totalBytes),
      "catalog built " + formatDate(data.built),
    ].join(" · ");
  }

  function bindControls() {
    ui.search.value = state.q;
    ui.source.value = state.source;
    ui.sort.value = state.sort;
    let timer = 0;
    ui.search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => update({ q: ui.search.value.trim() }), 120);
    });
    ui.source.addEventListener("change", () => update({ source: ui.source.value }));
    ui.sort.addEventListener("change", () => update({ sort: ui.sort.value }));
    ui.chipClear.addEventListener("click", () => update({ template: "" }));
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => update({ view: tab.dataset.view }));
    }
    ui.more.addEventListener("click", appendPage);
    new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) appendPage();
    }, { rootMargin: "600px" }).observe(ui.sentinel);
    document.addEventListener("keydown", (event) => {
      if (event.key === "/" && document.activeElement !== ui.search && !ui.player.open) {
        event.preventDefault();
        ui.search.focus();
      }
    });
    ui.player.addEventListener("close", stopVideo);
    ui.video.addEventListener("error", () => {
      if (!ui.video.getAttribute("src")) return;  // emptied on close, not a failure
      // Say so rather than show a dead player: the file may be in a codec this browser lacks.
      ui.noVideo.textContent = "This browser cannot play the video file. " +
        "Open its folder to play it with another player.";
      ui.noVideo.hidden = false;
      ui.video.hidden = true;
    });
    ui.player.addEventListener("click", (event) => {
      if (event.target === ui.player) ui.player.close();
    });
    ui.player.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") stepPlayer(event);
    });
    byId("player-close").addEventListener("click", () => ui.player.close());
  }

  function update(changes) {
    Object.assign(state, changes);
    writeHash();
    render();
  }

  function render() {
    for (const tab of document.querySelectorAll(".tab")) {
      tab.setAttribute("aria-pressed", String(tab.dataset.view === state.view));
    }
    ui.tasksView.hidden = state.view !== "tasks";
    ui.templatesView.hidden = state.view !== "templates";
    const template = templateByKey.get(state.template);
    ui.chip.hidden = !template || state.view !== "tasks";
    ui.chipText.textContent = template ? "Template: " + titleOf(template) : "";
    if (!full && (!data || !firstScreenWill())) renderLoading();
    else if (state.view === "tasks") renderTasks();
    else renderTemplates();
  }

  function renderLoading() {
    list = [];
    shown = 0;
    ui.grid.replaceChildren();
    ui.templateList.replaceChildren();
    ui.tasksEmpty.hidden = true;
    ui.templatesEmpty.hidden = true;
    ui.more.hidden = true;
    ui.count.textContent = "Loading all " + (data ? data.counts.tasks.toLocaleString() + " " : "") +
      "videos…";
  }

  // --- videos ---

  function renderTasks() {
    const words = terms();
    list = tasks.filter((task) =>
      (!state.source || task.source === state.source) &&
      (!state.template || task.templateKey === state.template) &&
      words.every((word) => task.hay.includes(word)));
    list.sort(byDate(state.sort));
    shown = 0;
    ui.grid.replaceChildren();
    ui.tasksEmpty.hidden = list.length > 0;
    ui.tasksEmpty.textContent = tasks.length ? "Nothing matches." : "Nothing is archived yet.";
    ui.count.textContent = "0 videos";
    appendPage();
  }

  function appendPage() {
    if (state.view !== "tasks" || shown >= list.length) return;
    const end = Math.min(list.length, shown + PAGE);
    const fragment = document.createDocumentFragment();
    for (let index = shown; index < end; index += 1) fragment.append(card(list[index], index));
    ui.grid.append(fragment);
    shown = end;
    ui.more.hidden = shown >= list.length;
    const total = full ? list.length : data.counts.tasks;
    ui.count.textContent = shown < total
      ? "Showing " + shown.toLocaleString() + " of " + total.toLocaleString() + " videos" +
        (full ? "" : " (loading the rest…)")
      : total.toLocaleString() + (total === 1 ? " video" : " videos");
    // The observer fires on changes only: if the sentinel is still in sight, keep filling.
    requestAnimationFrame(() => {
      if (ui.sentinel.getBoundingClientRect().top < innerHeight + 600) appendPage();
    });
  }

  function thumb(item, withBadges) {
    const box = el("span", "thumb");
    const image = localHref(item.image);
    if (image) {
      const img = el("img");
      img.alt = "";
      img.loading = "lazy";
      img.decoding = "async";
      // A file that is there but does not decode gets a label instead of a broken icon.
      img.addEventListener("error", () => {
        img.replaceWith(el("span", "placeholder", "Picture unreadable"));
      }, { once: true });
      img.src = image;
      box.append(img);
    } else if (!item.picture && localHref(item.video)) {
      // No picture of its own (an AI video): the video's first frame stands in for one.
      const still = el("video");
      still.muted = true;
      still.preload = "metadata";
      still.addEventListener("error", () => {
        still.replaceWith(el("span", "placeholder", "No picture"));
      }, { once: true });
      still.src = localHref(item.video);
      box.append(still);
    } else {
      box.append(el("span", "placeholder", "No picture"));
    }
    if (withBadges) {
      box.append(el("span", "badge source", item.source));
      if (item.duration) box.append(el("span", "badge duration", formatDuration(item.duration)));
      if (item.video && !item.picture) box.append(el("span", "play"));
    }
    return box;
  }

  function card(task, index) {
    const node = el("button", "card " + (task.level || "") + (task.picture ? " picture" : ""));
    node.type = "button";
    node.dataset.id = task.id;
    node.dataset.source = task.source;
    node.dataset.kind = task.picture ? "picture" : "video";
    node.dataset.created = task.created || "";
    node.setAttribute("aria-label", titleOf(task) + ", " + formatDate(task.created));
    const body = el("span", "body");
    body.append(el("span", "title" + (task.title ? "" : " untitled"), titleOf(task)));
    const meta = el("span", "meta");
    meta.append(el("span", "date", formatDate(task.created)), el("span", "", "·"),
      el("span", "id", "#" + task.id));
    body.append(meta, el("span", "state " + (task.level || ""), task.state || ""));
    node.append(thumb(task, true), body);
    node.addEventListener("click", () => openItem(task, index));
    return node;
  }

  // --- templates ---

  function renderTemplates() {
    const words = terms();
    const chosen = templates.filter((template) =>
      (!state.source || template.source === state.source) &&
      words.every((word) => template.hay.includes(word)));
    chosen.sort(byDate(state.sort));
    const fragment = document.createDocumentFragment();
    for (const template of chosen) fragment.append(templateRow(template));
    ui.templateList.replaceChildren(fragment);
    ui.templatesEmpty.hidden = chosen.length > 0;
    ui.count.textContent = chosen.length.toLocaleString() +
      (chosen.length === 1 ? " template" : " templates");
  }

  function templateRow(template) {
    const used = (tasksByTemplate.get(template.key) || []).slice().sort(byDate("new"));
    const row = el("article", "template");
    row.dataset.id = template.id;
    row.dataset.source = template.source;
    row.dataset.tasks = String(used.length);
    const cover = el("button", "card " + (template.level || ""));
    cover.type = "button";
    cover.setAttribute("aria-label", "Play template " + titleOf(template));
    cover.append(thumb(template, true));
    cover.addEventListener("click", () => openItem(template, -1));
    const body = el("div", "template-body");
    body.append(el("h3", "template-title", titleOf(template)));
    const details = [template.author ? "by " + template.author : "", "template #" + template.id,
      used.length + (used.length === 1 ? " video" : " videos")];
    if (template.level !== "ok") details.push(template.state);
    body.append(el("p", "meta", details.filter(Boolean).join(" · ")));
    if (template.prompt) body.append(el("p", "prompt-line", template.prompt));
    const strip = el("div", "strip");
    for (const task of used.slice(0, 12)) {
      const mini = el("button", "mini");
      mini.type = "button";
      mini.dataset.id = task.id;
      mini.setAttribute("aria-label", titleOf(task) + ", " + formatDate(task.created));
      mini.append(thumb(task, false), el("span", "mini-date", formatDate(task.created)));
      mini.addEventListener("click", () => openItem(task, -1));
      strip.append(mini);
    }
    if (used.length) body.append(strip);
    if (used.length) {
      const all = el("button", "link-button", "Show its " + used.length +
        (used.length === 1 ? " video" : " videos"));
      all.type = "button";
      all.addEventListener("click", () => update({ view: "tasks", template: template.key }));
      body.append(all);
    }
    row.append(cover, body);
    return row;
  }

  // --- player ---

  function openItem(item, index) {
    playing = { item, index };
    const video = item.picture ? null : localHref(item.video);
    const picture = item.picture ? localHref(item.image) : null;
    ui.noVideo.textContent = item.picture
      ? "The picture of this item is not in the archive."
      : "The video of this item is not in the archive.";
    ui.noVideo.hidden = Boolean(video || picture);
    ui.video.hidden = !video;
    ui.picture.hidden = !picture;
    // Made per opening: an <img> without a source would count as a broken picture.
    if (picture) {
      const img = el("img");
      img.alt = titleOf(item);
      img.src = picture;
      ui.picture.replaceChildren(img);
    } else {
      ui.picture.replaceChildren();
    }
    if (video) {
      ui.video.poster = localHref(item.image) || "";
      ui.video.src = video;
    } else {
      stopVideo();
    }
    ui.playerTitle.textContent = titleOf(item);
    const meta = [item.source, labelOf(item), formatDate(item.created)];
    if (item.duration) meta.push(formatDuration(item.duration));
    meta.push("id " + item.id, item.state);
    ui.playerMeta.textContent = meta.filter(Boolean).join(" · ");
    ui.playerProblems.replaceChildren(...(item.problems || []).map((text) => el("li", "", text)));
    ui.playerPrompt.textContent = item.prompt || "";
    ui.playerLinks.replaceChildren(...playerLinks(item));
    ui.playerFiles.replaceChildren(...(item.files || []).map(fileRow));
    if (!ui.player.open) ui.player.showModal();
    if (video) ui.video.play().catch(() => {});
  }

  function playerLinks(item) {
    const links = [];
    for (const [label, target] of [["Open folder", item.folder], ["metadata.json", item.sidecar]]) {
      const href = localHref(target);
      if (!href) continue;
      const link = el("a", "", label);
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener";
      links.push(link);
    }
    const template = templateByKey.get(item.templateKey);
    if (template) {
      const button = el("button", "link-button", "Template: " + titleOf(template));
      button.type = "button";
      button.addEventListener("click", () => {
        ui.player.close();
        update({ view: "templates", q: "", template: "" });
        const row = ui.templateList.querySelector(
          "[data-id=\"" + CSS.escape(template.id) + "\"][data-source=\"" +
          CSS.escape(template.source) + "\"]");
        if (row) row.scrollIntoView({ block: "center" });
      });
      links.push(button);
    }
    return links;
  }

  function fileRow(file) {
    const row = el("tr", file.current ? "" : "old");
    const name = el("td");
    const href = file.present ? localHref(file.href) : null;
    if (href) {
      const link = el("a", "", file.name);
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener";
      name.append(link);
    } else {
      name.append(file.name + (file.present ? "" : " (missing)"));
    }
    if (!file.current) name.append(" (older version)");
    // The original URL is shown as text only: the catalog never links out of the archive.
    row.append(name, el("td", "", formatBytes(file.bytes)), el("td", "url", file.url));
    return row;
  }

  function stepPlayer(event) {
    if (!playing || playing.index < 0 || event.target === ui.video) return;
    const next = playing.index + (event.key === "ArrowRight" ? 1 : -1);
    if (next < 0 || next >= list.length) return;
    event.preventDefault();
    while (shown <= next) appendPage();
    openItem(list[next], next);
  }

  function stopVideo() {
    ui.video.pause();
    ui.video.removeAttribute("src");
    ui.video.removeAttribute("poster");
    ui.video.load();
  }
})();

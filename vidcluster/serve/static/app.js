// vidcluster serve: the People view, an identity page and the corrections list, over the JSON API.
// No framework, nothing from outside this server; every text from the case goes in as text, never as HTML.
"use strict";

const FACES_PER_SIGHTING = 6; // faces shown per sighting (each one a button: use as cover)
const FACES_COMPARED = 6; // faces of each side of a comparison
const main = document.getElementById("main");
const statusLine = document.getElementById("status");
// Unicode's bidirectional controls, shown written out (\u202e) as the static report shows them
// (report/chrome.py): in a camera, file or label they would show the text around them in another order.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function visible(text) {
  return String(text).replace(BIDI_CONTROLS, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

// Text and attributes go in as text (bidi controls made visible); an input's value as it is, to be saved unchanged.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = visible(v);
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : k === "value" ? String(v) : visible(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(visible(c)));
  }
  return node;
}

function say(text, error) {
  statusLine.textContent = visible(text || "");
  statusLine.className = error ? "error" : "";
}

async function api(path, body) {
  const opts = { credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (!r.ok) {
    const text = (await r.text()).trim();
    const err = new Error(text || r.statusText);
    err.status = r.status;
    throw err;
  }
  return r.json();
}

// One correction: shown at once (the view is drawn again from the new state), or its refusal in the status line.
async function correct(body, after) {
  let res;
  try {
    res = await api("/api/corrections", body);
  } catch (err) {
    say(err.message, true);
    return;
  }
  if (after) after(res);
  else await route();
  say(res.done);
}

function localTime(iso) {
  if (!iso) return "\u2014";
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(iso);
  if (!m) return iso;
  return `${m[1]} ${m[2]} (${m[3] === "Z" ? "UTC" : "UTC" + m[3]})`;
}

function title(ident) {
  return `Identity ${ident.id}` + (ident.label ? ` \u2014 ${ident.label}` : "");
}

function faceImg(id, cls) {
  return id === null || id === undefined
    ? el("span", { class: "muted", text: "no face" })
    : el("img", { src: `/face/${id}.jpg`, alt: `face ${id}`, class: cls, loading: "lazy" });
}

function doubtCue(ident) {
  const near = (ident.nearest || [])[0];
  if (ident.doubt === "close" && near)
    return el("p", { class: "doubt", text: `maybe the same person as ${near.id} (distance ${near.distance})` });
  if (ident.doubt === "loose")
    return el("p", { class: "doubt", text: `may hold more than one person (spread ${ident.spread})` });
  return null;
}

function params() {
  return new URLSearchParams(location.search);
}

// -- navigation ------------------------------------------------------------------------------
function drawNav() {
  const nav = document.getElementById("nav");
  nav.replaceChildren(
    el("span", { class: "brand", text: "vidcluster review" }),
    el("a", { href: "/", text: "People" }),
    el("a", { href: "/corrections", text: "Corrections" }),
    el("span", { class: "spacer" }),
    el("button", {
      "data-action": "report",
      text: "Refresh the static report",
      title: "Rewrite OUT/report from the case as it stands now (also done when the server stops)",
      onclick: async (ev) => {
        ev.target.disabled = true;
        say("writing the report\u2026");
        try {
          say((await api("/api/report", {})).done);
        } catch (err) {
          say(err.message, true);
        }
        ev.target.disabled = false;
      },
    }),
  );
}

// -- People ------------------------------------------------------------------------------------
const SORTS = {
  size: (a, b) => b.n_sightings - a.n_sightings || a.id - b.id,
  doubt: (a, b) => doubtRank(a) - doubtRank(b) || nearestDistance(a) - nearestDistance(b) || a.id - b.id,
  time: (a, b) => (a.first_seen || "~").localeCompare(b.first_seen || "~") || a.id - b.id,
};
const doubtRank = (i) => ({ close: 0, loose: 1 })[i.doubt] ?? 2;
const nearestDistance = (i) => ((i.nearest || [])[0] || { distance: Infinity }).distance;

async function people() {
  const all = await api("/api/identities");
  const q = params();
  const sort = SORTS[q.get("sort")] ? q.get("sort") : "size";
  const showHidden = q.get("hidden") === "1";
  const shown = all.filter((i) => showHidden || !i.hidden).sort(SORTS[sort]);
  const picked = [];
  const mergeButton = el("button", {
    class: "primary",
    "data-action": "merge-selected",
    disabled: true,
    text: "Merge selected",
    title: "One person: the first one picked keeps its number",
    onclick: () => correct({ kind: "merge", ids: picked.slice() }),
  });
  const pickedText = el("span", { class: "muted", text: "pick two or more to merge" });
  function togglePick(id, box, card) {
    const k = picked.indexOf(id);
    if (box.checked && k < 0) picked.push(id);
    if (!box.checked && k >= 0) picked.splice(k, 1);
    card.classList.toggle("selected", box.checked);
    mergeButton.disabled = picked.length < 2;
    pickedText.textContent = picked.length ? `picked: ${picked.join(", ")}` : "pick two or more to merge";
  }
  const sortSelect = el(
    "select",
    {
      id: "sort",
      onchange: (ev) => setQuery({ sort: ev.target.value }),
    },
    ...Object.keys(SORTS).map((k) => el("option", { value: k, selected: k === sort, text: `by ${k}` })),
  );
  const hiddenBox = el("input", {
    type: "checkbox",
    id: "show-hidden",
    checked: showHidden,
    onchange: (ev) => setQuery({ hidden: ev.target.checked ? "1" : null }),
  });
  const nHidden = all.filter((i) => i.hidden).length;
  main.replaceChildren(
    el("h1", { text: `People (${all.length - nHidden} shown` + (nHidden ? `, ${nHidden} hidden)` : ")") }),
    el(
      "div",
      { class: "toolbar" },
      el("label", {}, "Sort ", sortSelect),
      el("label", {}, hiddenBox, " show hidden"),
      mergeButton,
      pickedText,
    ),
    el(
      "div",
      { class: "cards", id: "cards" },
      shown.map((i) => {
        const box = el("input", { type: "checkbox", "data-pick": i.id });
        const card = el(
          "div",
          { class: "card" + (i.hidden ? " hidden-identity" : ""), "data-id": i.id },
          el("label", { class: "pick", title: "pick for merging" }, box),
          el("a", { href: `/identity/${i.id}` }, faceImg(i.cover_face, "cover")),
          el("h3", {}, el("a", { href: `/identity/${i.id}`, text: title(i) })),
          el("p", { text: `${i.n_sightings} sighting${i.n_sightings === 1 ? "" : "s"} \u00b7 ${i.cameras.join(", ")}` }),
          el("p", { class: "muted", text: `first ${localTime(i.first_seen_local)}` }),
          el("p", { class: "muted", text: `last ${localTime(i.last_seen_local)}` }),
          i.confirmed ? el("p", {}, el("span", { class: "badge ok", text: "confirmed" })) : null,
          i.hidden ? el("p", {}, el("span", { class: "badge", text: "hidden" })) : null,
          doubtCue(i),
        );
        box.addEventListener("change", () => togglePick(i.id, box, card));
        return card;
      }),
    ),
  );
}

function setQuery(changes) {
  const q = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
  route();
}

// -- one identity --------------------------------------------------------------------------------
async function identity(id) {
  let ident;
  try {
    ident = await api(`/api/identities/${id}`);
  } catch (err) {
    if (err.status !== 404) throw err;
    main.replaceChildren(
      el("h1", { text: `No identity ${id} now` }),
      el("p", {}, "It was merged or regrouped. ", el("a", { href: "/", text: "Back to People" })),
    );
    return;
  }
  const label = el("input", { type: "text", id: "label", value: ident.label || "", placeholder: "label", size: 24 });
  const noteText = el("input", { type: "text", id: "note", placeholder: "note", size: 30 });
  main.replaceChildren(
    el(
      "div",
      { class: "head" },
      faceImg(ident.cover_face, "cover"),
      el(
        "div",
        {},
        el("h1", { text: title(ident) }),
        el(
          "dl",
          { class: "facts" },
          el("dt", { text: "sightings" }),
          el("dd", { text: `${ident.n_sightings} (${ident.n_faces} faces)` }),
          el("dt", { text: "cameras" }),
          el("dd", { text: ident.cameras.join(", ") }),
          el("dt", { text: "first seen" }),
          el("dd", { text: localTime(ident.first_seen_local) }),
          el("dt", { text: "last seen" }),
          el("dd", { text: localTime(ident.last_seen_local) }),
        ),
        doubtCue(ident),
        ident.confirmed
          ? el("p", {}, el("span", { class: "badge ok", text: `confirmed${ident.confirmed.by ? " by " + ident.confirmed.by : ""}` }))
          : null,
        ident.hidden ? el("p", {}, el("span", { class: "badge", text: "hidden: left out of the report" })) : null,
        el(
          "div",
          { class: "actions" },
          label,
          el("button", { "data-action": "name", text: "Name", onclick: () => correct({ kind: "name", id: ident.id, label: label.value }) }),
          noteText,
          el("button", { "data-action": "note", text: "Add note", onclick: () => correct({ kind: "note", id: ident.id, text: noteText.value }) }),
          el("button", { "data-action": "confirm", text: "Confirm", onclick: () => correct({ kind: "confirm", id: ident.id }) }),
          el("button", {
            "data-action": "hide",
            text: ident.hidden ? "Show again" : "Hide (bystander)",
            title: "Out of the report, still in the store",
            onclick: () => correct(ident.hidden ? { kind: "undo", n: ident.hidden_by } : { kind: "hide", id: ident.id }),
          }),
        ),
        (ident.examiner_notes || []).length
          ? el("ul", {}, ident.examiner_notes.map((n) => el("li", { text: n.text })))
          : null,
      ),
    ),
    el("h2", { text: "Nearest other identities" }),
    el(
      "div",
      { id: "nearest" },
      ident.nearest.length ? ident.nearest.map((n) => comparison(ident, n)) : el("p", { class: "muted", text: "none" }),
    ),
    el("h2", { text: `Sightings (${ident.n_sightings})` }),
    sightingsTable(ident),
  );
}

function comparison(ident, other) {
  const side = (who, faces) =>
    el(
      "div",
      { class: "side" },
      el("h4", {}, el("a", { href: `/identity/${who.id}`, text: title(who) }), ` \u00b7 ${who.n_sightings} sightings`),
      el("div", { class: "thumbs" }, faces.slice(0, FACES_COMPARED).map((f) => faceImg(f))),
    );
  return el(
    "div",
    { class: "compare", "data-other": other.id },
    side(ident, ident.faces),
    el(
      "div",
      { class: "mid" },
      el("span", { class: "distance", text: other.distance.toFixed(3) }),
      el("span", { class: "muted", text: "distance" }),
      el("button", {
        class: "primary",
        "data-action": "merge",
        "data-other": other.id,
        text: "Same person",
        onclick: () => correct({ kind: "merge", ids: [ident.id, other.id] }, (res) => go(`/identity/${res.identity}`)),
      }),
      el("button", {
        "data-action": "apart",
        "data-other": other.id,
        text: "Not the same",
        title: "Keep these two apart in every later regrouping",
        onclick: () => correct({ kind: "apart", ids: [ident.id, other.id] }),
      }),
    ),
    side(other, other.faces),
  );
}

function sightingsTable(ident) {
  const rows = ident.sightings.map((s) => {
    const target = el(
      "select",
      { "data-move": s.track_id, "aria-label": `move sighting ${s.track_id} to` },
      el("option", { value: "new", text: "a new identity" }),
      ident.others.map((o) => el("option", { value: o.id, text: title(o) })),
    );
    return el(
      "tr",
      { id: `s-${s.track_id}`, "data-sighting": s.track_id },
      el(
        "td",
        {},
        s.clip
          ? el("video", { class: "clip", src: s.clip, poster: s.snapshot, controls: true, preload: "none", muted: true })
          : el("img", { class: "snap", src: s.snapshot, alt: `sighting ${s.track_id}`, loading: "lazy" }),
      ),
      el(
        "td",
        {},
        el("div", { text: s.camera }),
        el("div", { text: localTime(s.start_local) }),
        el("div", { class: "muted", text: `to ${localTime(s.end_local)}` }),
        el("div", { class: "muted", text: `sighting:${s.track_id} \u00b7 ${s.n_faces} faces` }),
      ),
      el(
        "td",
        {},
        el(
          "div",
          { class: "faces" },
          s.faces.slice(0, FACES_PER_SIGHTING).map((f) =>
            el(
              "button",
              {
                class: "face" + (f.id === ident.cover_face ? " is-cover" : ""),
                "data-action": "cover",
                "data-face": f.id,
                title: f.id === ident.cover_face ? "the cover face" : "use this face as the cover",
                disabled: f.id === ident.cover_face,
                onclick: () => correct({ kind: "cover", id: ident.id, face: f.id }),
              },
              faceImg(f.id),
            ),
          ),
          s.faces.length > FACES_PER_SIGHTING
            ? el("span", { class: "muted", text: `+${s.faces.length - FACES_PER_SIGHTING}` })
            : null,
        ),
      ),
      el(
        "td",
        {},
        el(
          "div",
          { class: "row-actions" },
          el("button", {
          class: "danger",
          "data-action": "reject",
          "data-sighting": s.track_id,
          text: "Not this person",
          onclick: () => correct({ kind: "reject", id: ident.id, sighting: s.track_id }),
        }),
        el(
          "span",
          {},
          target,
          " ",
          el("button", {
            "data-action": "move",
            "data-sighting": s.track_id,
            text: "Move",
            onclick: () =>
              correct({ kind: "move", sighting: s.track_id, to: target.value === "new" ? null : Number(target.value) }),
          }),
        ),
        ),
      ),
    );
  });
  return el(
    "table",
    { id: "sightings" },
    el("thead", {}, el("tr", {}, ["clip", "camera and time", "faces (click one to make it the cover)", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows),
  );
}

// -- corrections -------------------------------------------------------------------------------
async function corrections() {
  const items = await api("/api/corrections");
  main.replaceChildren(
    el("h1", { text: `Corrections (${items.length})` }),
    items.length
      ? el(
          "table",
          { id: "corrections" },
          el("thead", {}, el("tr", {}, ["#", "made (UTC)", "what", ""].map((h) => el("th", { text: h })))),
          el(
            "tbody",
            {},
            items.map((c) =>
              el(
                "tr",
                { class: c.undone_utc ? "undone" : "", "data-n": c.n },
                el("td", { text: c.n }),
                el("td", { text: (c.created_utc || "").slice(0, 19).replace("T", " ") }),
                el("td", { text: c.text }),
                el(
                  "td",
                  { class: "keep" },
                  c.undone_utc
                    ? el("span", { class: "muted", text: `undone ${c.undone_utc.slice(0, 19).replace("T", " ")}` })
                    : el("button", { "data-action": "undo", "data-n": c.n, text: "Undo", onclick: () => correct({ kind: "undo", n: c.n }) }),
                ),
              ),
            ),
          ),
        )
      : el("p", { class: "muted", text: "No corrections yet." }),
  );
}

// -- routing -----------------------------------------------------------------------------------
function go(path) {
  history.pushState(null, "", path);
  return route();
}

let draws = 0;

async function route() {
  const path = location.pathname;
  const m = /^\/identity\/(\d+)$/.exec(path);
  try {
    if (m) await identity(Number(m[1]));
    else if (path === "/corrections") await corrections();
    else await people();
    document.body.dataset.ready = String(++draws); // tests wait for this to change
  } catch (err) {
    say(err.message, true);
  }
}

window.addEventListener("popstate", route);
drawNav();
route();

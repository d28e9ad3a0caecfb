// The Members panel: the configuration the page shows (voters, learners, the two halves of a
// joint one), each node's place in it with the changes that apply to it, and each node's clock
// (its reading, its drift in %, a forward jump). Rows are built once per set of nodes and then
// only updated, so an input being edited keeps its focus and text across redraws.

import { ROLE_COLORS } from "./colors.js";
import { MEMBER_NAMES, esc, localTime } from "./ring.js";

/** The changes offered for a node, by its place: [action, button label, tooltip]. */
function changesFor(n, leaderId) {
  const id = n.id;
  switch (n.member) {
    case "joining":
      return [["add_learner", "+ learner", `Ask the leader to add ${id} as a learner: it receives the log and does not vote`]];
    case "learner":
      return [
        ["promote", "promote", `Ask the leader to make ${id} a voter (refused until it caught up)`],
        ["remove", "remove", `Ask the leader to remove ${id}`],
      ];
    case "removed":
      return [];
    default: {
      const out = [];
      if (id !== leaderId) out.push(["transfer", "lead", `Ask the leader to hand its leadership to ${id}`]);
      out.push(["replace", "replace", `Replace ${id} by a new node in one joint change (adds a node if none is joining)`]);
      out.push(["remove", "remove", `Ask the leader to remove ${id}${id === leaderId ? " (the leader steps down and hands over)" : ""}`]);
      return out;
    }
  }
}

/** The configuration in one line, for the panel's header. */
export function configLine(m) {
  if (!m?.voters?.length) return "no configuration seen yet";
  const learners = m.learners.length ? ` · learners ${m.learners.join(" ")}` : "";
  if (m.joint) return `joint: old ${m.outgoing.join(" ")} → new ${m.voters.join(" ")}${learners}`;
  return `voters ${m.voters.join(" ")}${learners}`;
}

export class Members {
  /**
   * @param {HTMLTableElement} table
   * @param {HTMLElement} header where the configuration line goes
   * @param {{onChange: (act: string, id: string) => void, onDrift: (id: string, pct: number) => void,
   *          onJump: (id: string) => void}} handlers
   */
  constructor(table, header, handlers) {
    this.body = table.tBodies[0];
    this.header = header;
    this.rows = new Map();
    table.addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-act]");
      const id = b?.closest("tr")?.dataset.node;
      if (!id) return;
      if (b.dataset.act === "jump") handlers.onJump(id);
      else handlers.onChange(b.dataset.act, id);
    });
    table.addEventListener("change", (ev) => {
      const input = ev.target.closest("input.drift");
      const id = input?.closest("tr")?.dataset.node;
      if (id) handlers.onDrift(id, Number(input.value));
    });
  }

  /** Builds one row per node id. */
  layout(ids) {
    this.body.replaceChildren();
    this.rows.clear();
    for (const id of ids) {
      const tr = document.createElement("tr");
      tr.dataset.node = id;
      tr.innerHTML = `<td class="who"><i></i>${esc(id)}</td><td class="place"></td><td class="changes"></td>` +
        `<td class="clock"></td><td><input class="drift" type="number" min="-50" max="50" step="0.5" value="0" aria-label="${esc(id)} clock drift %"></td>` +
        `<td><button data-act="jump" class="small" title="Jump ${esc(id)}'s clock forward by the clock jump below">jump</button></td>`;
      this.body.appendChild(tr);
      this.rows.set(id, {
        tr, dot: tr.querySelector(".who i"), place: tr.querySelector(".place"), changes: tr.querySelector(".changes"),
        clock: tr.querySelector(".clock"), drift: tr.querySelector("input.drift"), changesKey: null,
      });
    }
  }

  /** @param {import("./types.js").PlaygroundState} st */
  draw(st, t) {
    this.header.textContent = configLine(st.membership);
    this.header.classList.toggle("joint", !!st.membership?.joint);
    const leader = st.nodes.find((n) => n.alive && n.role === "leader");
    for (const n of st.nodes) {
      const r = this.rows.get(n.id);
      if (!r) continue;
      r.tr.className = `${n.member}${n.alive ? "" : " dead"}`;
      r.dot.style.background = ROLE_COLORS[n.alive ? n.role : "dead"];
      let place = n.member === "voter" && st.membership?.joint ? "old+new" : n.member;
      if (n.member === "incoming") place = "new only";
      if (n.member === "outgoing") place = "old only";
      if (leader && leader.transfer_to === n.id) place += " ←";
      r.place.textContent = place;
      r.place.title = `${MEMBER_NAMES[n.member] ?? n.member}${st.membership?.joint && n.member === "voter" ? " (in both halves of the joint configuration)" : ""}` +
        `${leader && leader.transfer_to === n.id ? `; ${leader.id} is handing it the leadership` : ""}`;
      const acts = changesFor(n, leader?.id);
      const key = acts.map((a) => a[0]).join();
      if (key !== r.changesKey) {
        r.changesKey = key;
        r.changes.innerHTML = acts.map(([act, label, tip]) =>
          `<button class="small" data-act="${act}" title="${esc(tip)}">${label}</button>`).join("");
      }
      r.clock.textContent = Math.floor(localTime(n, st.now, t)).toLocaleString("en-US");
      if (document.activeElement !== r.drift) {
        const pct = String(n.drift_ppm / 1e4);
        if (r.drift.value !== pct) r.drift.value = pct;
      }
    }
  }
}

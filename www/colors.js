// The palette: roles, message kinds and terms. One place, so the ring, the panels and the legend
// agree.

/** Fill colour of a node by role. */
export const ROLE_COLORS = {
  follower: "#5b8def",
  pre_candidate: "#e8835a",
  candidate: "#f2b134",
  leader: "#3ecf8e",
  dead: "#3a414d",
};

/** The letter each role carries on the ring, so roles read without their colours. */
export const ROLE_LETTERS = {
  follower: "F",
  pre_candidate: "PC",
  candidate: "C",
  leader: "L",
  dead: "✕",
};

/** Human names of the roles, for the legend. */
export const ROLE_NAMES = {
  follower: "follower",
  pre_candidate: "pre-candidate",
  candidate: "candidate",
  leader: "leader",
  dead: "crashed",
};

/** Colour and legend name of each message family; responses are drawn hollow. */
export const KIND_FAMILIES = {
  append_entries: { color: "#4fc1e9", name: "append entries" },
  request_vote: { color: "#f2b134", name: "request vote" },
  pre_vote: { color: "#d9d36a", name: "pre-vote" },
  install_snapshot: { color: "#c678dd", name: "install snapshot" },
  timeout_now: { color: "#ff6ad5", name: "timeout now (hand-over)" },
};

/** The family of a message kind and whether it is a response. */
export function kindInfo(kind) {
  const response = kind.endsWith("_response");
  const base = response ? kind.slice(0, -"_response".length) : kind;
  const fam = KIND_FAMILIES[base] ?? { color: "#aab", name: base };
  return { ...fam, response };
}

/** A stable, well-separated colour per term (golden-angle hues). */
export function termColor(term) {
  if (!term) return "#59606b";
  const hue = (term * 137.508 + 200) % 360;
  return `hsl(${hue.toFixed(0)} 55% 52%)`;
}

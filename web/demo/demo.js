// Helpers of the demo pages only (not part of billing.js): the local token box and the
// names of the default catalog's features.
//
// In your app, getToken returns the token your sign-in already holds. Here the local stack
// accepts HS256 tokens from `make token USER_ID=you`, pasted into a box and kept in
// localStorage so every demo page uses the same identity.

const KEY = "billing-demo-token";

/** How the demo names the default catalog's features (billing.js's `featureNames` option). */
export const featureNames = {
  ai_messages: "AI messages",
  exports: "Exports",
  priority_support: "Priority support",
  projects: "Projects",
  usage: "Uses",
  workspaces: "Workspaces",
};

/** @returns {string | null} */
export function demoToken() {
  try {
    return localStorage.getItem(KEY);
  } catch (_) {
    return null;
  }
}

/**
 * The `sub` of a JWT, read without verifying it (display only; the API verifies).
 * @param {string} token
 * @returns {string | null}
 */
function subject(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).sub || null;
  } catch (_) {
    return null;
  }
}

/**
 * A small form to paste a local token; calls onChange after it is saved or cleared.
 * @param {HTMLElement} el
 * @param {() => void} onChange
 */
export function tokenBox(el, onChange) {
  const form = document.createElement("form");
  form.className = "token-box";
  const label = document.createElement("label");
  label.textContent = "Local token (make token USER_ID=you)";
  const input = document.createElement("input");
  input.name = "token";
  input.autocomplete = "off";
  input.spellcheck = false;
  input.placeholder = "eyJhbGciOiJIUzI1NiIs…";
  label.append(input);
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = "Use token";
  const clear = document.createElement("button");
  clear.type = "button";
  clear.textContent = "Sign out";
  const who = document.createElement("p");
  who.className = "token-who";
  const show = () => {
    const t = demoToken();
    const sub = t && subject(t);
    who.textContent = sub ? `Signed in as ${sub}` : "Not signed in";
    who.dataset.user = sub || "";
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (t) localStorage.setItem(KEY, t);
    input.value = "";
    show();
    onChange();
  });
  clear.addEventListener("click", () => {
    localStorage.removeItem(KEY);
    show();
    onChange();
  });
  form.append(label, save, clear, who);
  el.replaceChildren(form);
  show();
}

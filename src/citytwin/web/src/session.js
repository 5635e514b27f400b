// Signing in: an API key turns into a session cookie the server sets (HttpOnly, so this
// page never holds the key after the form is sent), and into a token for MQTT.

const PATH = "/api/v1/session";

// Who this page acts as: null where the server has no access control (nobody signs in).
export async function loadSession() {
  try {
    const resp = await fetch(PATH, { headers: { accept: "application/json" } });
    return resp.ok ? await resp.json() : null;
  } catch {
    return null;
  }
}

// The MQTT credentials of a signed-in session, else none (anonymous: open data only).
export function mqttCredentials(session) {
  return session?.signedIn && session.mqtt ? session.mqtt : null;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// The header's sign-in control: "Sign in" for visitors, who and "Sign out" once in.
export function renderSession(node, session) {
  node.replaceChildren();
  if (!session?.accessControl) return; // everyone may do everything: nothing to sign in to
  if (session.signedIn) {
    const org = session.organisation ? ` · ${session.organisation}` : "";
    node.append(el("span", { class: "who", title: session.identity }, `${session.role}${org}`));
    const out = el("button", { type: "button", class: "link" }, "Sign out");
    out.addEventListener("click", async () => {
      await fetch(PATH, { method: "DELETE" });
      location.reload();
    });
    node.append(out);
    return;
  }
  node.append(el("span", { class: "who" }, "open data"));
  const open = el("button", { type: "button", id: "sign-in" }, "Sign in");
  const dialog = signInDialog();
  open.addEventListener("click", () => dialog.showModal());
  node.append(open, dialog);
}

function signInDialog() {
  const dialog = el("dialog", { id: "sign-in-dialog", "aria-labelledby": "sign-in-title" });
  const form = el("form", { method: "dialog" });
  const input = el("input", { type: "password", id: "api-key", name: "key", autocomplete: "off", required: "" });
  const message = el("p", { class: "error", role: "alert" });
  const cancel = el("button", { type: "button" }, "Cancel");
  cancel.addEventListener("click", () => dialog.close());
  const buttons = el("div", { class: "buttons" });
  buttons.append(el("button", { type: "submit" }, "Sign in"), cancel);
  form.append(
    el("h2", { id: "sign-in-title" }, "Sign in"),
    el("p", {}, "Without signing in you see the city's open data. With an API key you see what its organisation and role may see."),
    el("label", { for: "api-key" }, "API key"),
    input,
    message,
    buttons,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    const resp = await fetch(PATH, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ key: input.value.trim() }),
    });
    if (resp.ok) {
      input.value = "";
      location.reload(); // everything on the page is read again as the new identity
      return;
    }
    const body = await resp.json().catch(() => null);
    message.textContent = body?.message ?? `${resp.status} ${resp.statusText}`;
  });
  dialog.append(form);
  return dialog;
}

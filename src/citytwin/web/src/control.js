// The control panel: a Thing's TaskingCapabilities, new Tasks and their status, live.
import { postJson, sta, staAll, staUrl } from "./api.js";
import { el, table, timeText, unitText, fill } from "./format.js";

function fieldsOf(capability) {
  const record = capability.taskingParameters ?? {};
  return record.field ?? record.fields ?? [];
}

function input(field) {
  const id = `param-${field.name}`;
  const c = field.constraint ?? {};
  let control;
  if (field.type === "Boolean") control = el("input", { id, type: "checkbox", name: field.name });
  else if ((field.type === "Category" || field.type === "Text") && c.value?.length) {
    control = el("select", { id, name: field.name }, c.value.map((v) => el("option", { value: v }, v)));
  } else if (field.type === "Quantity" || field.type === "Count") {
    const [lo, hi] = c.interval?.[0] ?? [];
    control = el("input", { id, name: field.name, type: "number", step: field.type === "Count" ? "1" : "any", min: lo, max: hi, required: !field.optional });
  } else if (field.type === "Time") control = el("input", { id, name: field.name, type: "datetime-local", required: !field.optional });
  else control = el("input", { id, name: field.name, type: "text", required: !field.optional, pattern: c.pattern });
  const unit = unitText(field.uom?.code ?? field.uom?.symbol);
  const range = c.interval?.length ? ` (${c.interval.map(([a, b]) => `${a}–${b}`).join(", ")}${unit ? ` ${unit}` : ""})` : "";
  return el("p", {}, el("label", { for: id }, `${field.label ?? field.name}${unit ? ` [${unit}]` : ""}${range}`), " ", control);
}

function valueOf(field, form) {
  const node = form.elements.namedItem(field.name);
  if (field.type === "Boolean") return node.checked;
  if (node.value === "") return undefined;
  if (field.type === "Quantity") return Number(node.value);
  if (field.type === "Count") return Number.parseInt(node.value, 10);
  if (field.type === "Time") return new Date(node.value).toISOString();
  return node.value;
}

export class Control {
  constructor(root, live) {
    this.root = root;
    this.live = live;
    this.unsubscribe = [];
  }

  async show(thingId) {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    const filter = thingId ? `Things(${thingId})/TaskingCapabilities` : "TaskingCapabilities";
    const caps = await staAll(`${filter}?$expand=Thing($select=id,name)&$orderby=id&$top=1000`, 2000).catch(() => []);
    const list = el("div", { class: "capabilities" });
    fill(this.root, 
      el("h2", {}, thingId ? `Control: ${caps[0]?.Thing?.name ?? `Thing ${thingId}`}` : "Control"),
      el("p", { class: "muted" }, "Tasks go to the device through its driver; their status follows as the device answers."),
      thingId ? el("p", {}, el("a", { href: "#control" }, "All controllable Things")) : null,
      list,
    );
    if (!caps.length) {
      list.append(el("p", { class: "muted" }, "No TaskingCapabilities here."));
      return;
    }
    for (const cap of caps) list.append(this.#capability(cap));
  }

  #capability(cap) {
    const fields = fieldsOf(cap);
    const status = el("div", { class: "task-status", "aria-live": "polite" });
    const history = el("div", { class: "scroll" });
    const form = el(
      "form",
      {
        onsubmit: async (e) => {
          e.preventDefault();
          const params = {};
          for (const f of fields) {
            const v = valueOf(f, e.target);
            if (v !== undefined) params[f.name] = v;
          }
          try {
            const { data, location: loc } = await postJson(staUrl("Tasks"), {
              TaskingCapability: { "@iot.id": cap["@iot.id"] },
              taskingParameters: params,
            });
            const id = data?.["@iot.id"] ?? Number(/Tasks\((\d+)\)/.exec(loc ?? "")?.[1]);
            this.#follow(status, id, () => this.#history(history, cap["@iot.id"]));
          } catch (err) {
            fill(status, el("p", { class: "error" }, err.message));
          }
        },
      },
      fields.map(input),
      el("button", { type: "submit" }, "Create Task"),
    );
    const section = el(
      "section",
      { class: "capability", "data-capability": cap["@iot.id"] },
      el("h3", {}, `${cap.name} — ${cap.Thing?.name ?? ""}`),
      cap.description ? el("p", { class: "muted" }, cap.description) : null,
      form,
      status,
      history,
    );
    this.#history(history, cap["@iot.id"]);
    return section;
  }

  async #history(holder, capId) {
    const page = await sta(`TaskingCapabilities(${capId})/Tasks?$orderby=creationTime desc&$top=5`).catch(() => null);
    const tasks = page?.value ?? [];
    fill(holder, 
      tasks.length
        ? table(
            [
              { title: "Task", cell: (t) => el("a", { href: `#entities/Tasks(${t["@iot.id"]})` }, String(t["@iot.id"])) },
              { title: "created", cell: (t) => timeText(t.creationTime) },
              { title: "parameters", cell: (t) => JSON.stringify(t.taskingParameters) },
              { title: "status", cell: (t) => t.status ?? "–" },
            ],
            tasks,
            "Recent Tasks",
          )
        : el("p", { class: "muted small" }, "No Tasks yet."),
    );
  }

  // Shows the Task's status as it changes; onChange also runs on each change.
  async #follow(holder, id, onChange) {
    const render = (task) => {
      onChange();
      fill(holder, 
        el("p", {}, `Task ${id}: `, el("strong", { class: "status", "data-status": task.status ?? "created" }, task.status ?? "created"), task.statusMessage ? ` — ${task.statusMessage}` : ""),
        el("p", { class: "small muted" }, `created ${timeText(task.creationTime)}`),
      );
    };
    this.unsubscribe.push(this.live.subscribe([`v1.1/Tasks(${id})`], render));
    const task = await sta(`Tasks(${id})`);
    if (task) render(task);
  }
}

// The playground: a form per model built from /openapi.json, uploads through presign, live progress from the
// job's event stream, the result in a <video>, and the key's recent jobs. No library, no build step.
"use strict";

const KEY_STORE = "video-serve-api-key"; // sessionStorage: gone when the tab closes, never sent anywhere else
const BASE = location.pathname.replace(/\/playground\/?$/, ""); // the app's route prefix ("" at the root)
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const $ = (id) => document.getElementById(id);

let components = {}; // OpenAPI components.schemas
let models = {}; // model name -> its request schema
let following = null; // the job whose events are being read: {id, abort}

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.fields = error.fields || [];
  }
}

class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

async function api(path, { method = "GET", json, headers = {}, signal } = {}) {
  const init = { method, signal, headers: { ...headers, Authorization: `Bearer ${apiKey()}` } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  const response = await fetch(BASE + path, init);
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const body = isJson ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401) $("key-status").textContent = "The server refused this key.";
    throw new ApiError(response.status, body);
  }
  return body;
}

// ---- the form, from the request schemas ---------------------------------------------------------

function resolve(schema) {
  while (schema && schema.$ref) schema = components[schema.$ref.split("/").pop()];
  return schema || {};
}

/** What input a property needs: {kind: text|number|enum|boolean|file|json, ...}. */
function inputFor(name, property) {
  let schema = resolve(property);
  if (schema.anyOf) {
    const options = schema.anyOf.filter((s) => s.type !== "null");
    if (options.length !== 1) return { kind: "json", schema };
    schema = { ...resolve(options[0]), default: schema.default };
  }
  if (property["x-media-kind"]) return { kind: "file", upload: property["x-media-kind"], schema };
  if (schema.enum) return { kind: "enum", schema };
  if (schema.type === "boolean") return { kind: "boolean", schema };
  if (schema.type === "integer" || schema.type === "number") return { kind: "number", schema };
  if (schema.type === "string") return { kind: "text", schema };
  return { kind: "json", schema };
}

function fieldOrder(schema) {
  const names = Object.keys(schema.properties).filter((n) => n !== "model");
  const required = new Set(schema.required || []);
  const rank = (n) => (required.has(n) ? 0 : inputFor(n, schema.properties[n]).kind === "file" ? 1 : 2);
  return names.map((n, i) => [rank(n), i, n]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
}

function makeControl(name, input, property) {
  const { kind, schema } = input;
  const fallback = property.default !== undefined ? property.default : schema.default;
  let control;
  if (kind === "enum") {
    control = document.createElement("select");
    control.append(new Option(fallback !== undefined ? `(default: ${fallback})` : "(none)", ""));
    for (const value of schema.enum) control.append(new Option(String(value), String(value)));
  } else if (kind === "boolean") {
    control = document.createElement("input");
    control.type = "checkbox";
    control.checked = Boolean(fallback);
  } else if (kind === "file") {
    control = document.createElement("input");
    control.type = "file";
    control.accept = `${input.upload}/*`;
  } else if (kind === "json" || (kind === "text" && schema.format !== "uri" && !(schema.maxLength <= 300))) {
    control = document.createElement("textarea");
    if (kind === "json") control.placeholder = fallback !== undefined ? JSON.stringify(fallback) : "JSON";
  } else {
    control = document.createElement("input");
    control.type = kind === "number" ? "number" : "text";
    if (kind === "number") control.step = schema.type === "integer" ? "1" : "any";
    if (fallback !== undefined && fallback !== null) control.placeholder = String(fallback);
  }
  control.id = control.name = `field-${name}`;
  control.dataset.field = name;
  control.dataset.kind = kind;
  if (kind === "file") control.dataset.upload = input.upload;
  if (kind === "boolean") control.dataset.default = String(Boolean(fallback));
  return control;
}

function renderForm(model) {
  const schema = models[model];
  const container = $("fields");
  container.replaceChildren();
  $("model-description").textContent = schema.description || "";
  const required = new Set(schema.required || []);
  for (const name of fieldOrder(schema)) {
    const property = schema.properties[name];
    const input = inputFor(name, property);
    const row = document.createElement("div");
    row.className = "field";
    row.dataset.field = name;
    const label = document.createElement("label");
    const control = makeControl(name, input, property);
    label.htmlFor = control.id;
    label.textContent = (input.kind === "file" ? `${name} (${input.upload} file)` : name) + (required.has(name) ? " *" : "");
    const hint = document.createElement("span");
    hint.className = "hint muted";
    hint.textContent = property.description || resolve(property).description || "";
    const error = document.createElement("p");
    error.className = "error";
    error.dataset.errorFor = name;
    error.setAttribute("role", "alert");
    row.append(label, control, hint, error);
    container.append(row);
  }
}

// ---- submitting ----------------------------------------------------------------------------------

function contentTypeOf(file, kind) {
  if (/^(image|video|audio)\/[A-Za-z0-9.+-]+$/.test(file.type)) return file.type;
  const ext = (file.name.split(".").pop() || "").toLowerCase().replace(/[^a-z0-9]/g, "");
  return `${kind}/${ext || "octet-stream"}`;
}

async function upload(field, kind, file) {
  let presign;
  try {
    presign = await api("/api/v1/presign/upload", {
      method: "POST",
      json: { input_type: kind, content_type: contentTypeOf(file, kind), size: file.size },
    });
  } catch (error) {
    throw new FieldError(field, error.message);
  }
  const response = await fetch(presign.upload_url, {
    method: presign.method || "PUT",
    body: file,
    headers: { "Content-Type": contentTypeOf(file, kind) },
  });
  if (!response.ok) throw new FieldError(field, `upload failed: HTTP ${response.status}`);
  return presign.key;
}

/** The request body from the form: empty inputs are left out so the server's defaults apply. */
async function collect(model) {
  const body = { model };
  for (const control of $("fields").querySelectorAll("[data-field]:is(input, select, textarea)")) {
    const field = control.dataset.field;
    const kind = control.dataset.kind;
    if (kind === "boolean") {
      if (String(control.checked) !== control.dataset.default) body[field] = control.checked;
    } else if (kind === "file") {
      if (control.files.length) body[field] = await upload(field, control.dataset.upload, control.files[0]);
    } else if (control.value.trim() !== "") {
      body[field] = parseValue(field, kind, control.value.trim());
    }
  }
  return body;
}

function parseValue(field, kind, text) {
  if (kind === "number") return Number(text);
  if (kind !== "json") return text;
  try {
    return JSON.parse(text);
  } catch {
    if (/^[A-Za-z_][\w-]*$/.test(text)) return text; // a bare word of a union with strings, e.g. largest
    throw new FieldError(field, "is not valid JSON");
  }
}

function clearErrors() {
  for (const element of document.querySelectorAll("[data-error-for]")) element.textContent = "";
  for (const row of document.querySelectorAll(".field.invalid")) row.classList.remove("invalid");
  $("form-error").textContent = "";
}

/** The API's 422 names each field: show each message next to its input (others above the button). */
function showFieldErrors(fields, fallback) {
  const unplaced = [];
  for (const { field, message } of fields) {
    const name = String(field).split(".")[0];
    const element = document.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (element) {
      element.textContent = element.textContent ? `${element.textContent}; ${message}` : message;
      element.closest(".field").classList.add("invalid");
    } else {
      unplaced.push(`${field}: ${message}`);
    }
  }
  if (unplaced.length || !fields.length) $("form-error").textContent = unplaced.join("; ") || fallback;
}

async function submitJob(event) {
  event.preventDefault();
  clearErrors();
  const button = $("submit");
  button.disabled = true;
  try {
    const body = await collect($("model").value);
    const created = await api("/api/v1/generate", { method: "POST", json: body });
    refreshJobs();
    followJob(created.job_id);
  } catch (error) {
    if (error instanceof FieldError) showFieldErrors([{ field: error.field, message: error.message }]);
    else if (error instanceof ApiError) showFieldErrors(error.fields, error.message);
    else $("form-error").textContent = String(error.message || error);
  } finally {
    button.disabled = false;
  }
}

// ---- following a job: its event stream, read with fetch ---------------------------------------------
// EventSource cannot send an Authorization header, so the stream is a streamed fetch, parsed here.

function parseEvent(block) {
  const event = { event: "message", id: null, data: [] };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // a comment: the server's keep-alive
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (name === "event") event.event = value;
    else if (name === "id") event.id = value;
    else if (name === "data") event.data.push(value);
  }
  return event.data.length ? { ...event, data: JSON.parse(event.data.join("\n")) } : null;
}

/** Read the stream until its `done` event (returns true) or until it breaks off (returns false). */
async function readEvents(jobId, lastId, signal, onEvent) {
  const headers = { Accept: "text/event-stream", Authorization: `Bearer ${apiKey()}` };
  if (lastId) headers["Last-Event-ID"] = lastId;
  const response = await fetch(`${BASE}/api/v1/jobs/${encodeURIComponent(jobId)}/events`, { headers, signal });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer = (buffer + value).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) onEvent(event);
      if (event && event.event === "done") return true;
    }
  }
}

async function followJob(jobId) {
  if (following) following.abort.abort();
  const abort = new AbortController();
  following = { id: jobId, abort };
  showRun(jobId);
  let lastId = null;
  const onEvent = (event) => {
    lastId = event.id || lastId;
    if (event.event === "done") showDone(event.data);
    else showProgress(event.data);
  };
  for (let attempt = 1; attempt <= 30 && !abort.signal.aborted; attempt++) {
    try {
      if (await readEvents(jobId, lastId, abort.signal, onEvent)) return;
    } catch (error) {
      if (abort.signal.aborted) return;
      if (error instanceof ApiError && error.status < 500) {
        $("job-error").textContent = error.message;
        return;
      }
    }
    $("job-status").textContent = "Connection lost; reconnecting…";
    await new Promise((resolve) => setTimeout(resolve, Math.min(attempt, 5) * 1000));
  }
}

function showRun(jobId) {
  $("run").hidden = false;
  $("job-id").textContent = jobId;
  $("job-error").textContent = "";
  $("result").hidden = true;
  $("cancel").disabled = false;
  $("result-video").removeAttribute("src");
  showProgress({ status: "queued", stage: "queued", progress: 0 });
}

function showProgress({ status, stage, progress }) {
  const percent = Math.round(progress || 0);
  $("progress").value = percent;
  $("progress-text").textContent = `${percent}%`;
  $("stage").textContent = stage || "";
  $("job-status").textContent = `Status: ${status}`;
}

function showDone(view) {
  showProgress(view);
  $("cancel").disabled = true;
  if (view.status === "completed" && view.result_url) {
    $("result-video").poster = view.thumbnail_url || "";
    $("result-video").src = view.result_url;
    $("download").href = view.result_url;
    $("result").hidden = false;
  } else if (view.status === "failed") {
    $("job-error").textContent = `${view.error_code || "failed"}: ${view.error_message || ""}`;
  }
  refreshJobs();
}

async function cancelJob(jobId) {
  try {
    await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" });
  } catch (error) {
    $("jobs-error").textContent = error.message;
  }
  refreshJobs();
}

// ---- the key's recent jobs ------------------------------------------------------------------------

async function refreshJobs() {
  if (!apiKey()) return;
  let page;
  try {
    page = await api("/api/v1/jobs?limit=20");
  } catch (error) {
    $("jobs-error").textContent = error.message;
    return;
  }
  $("jobs-error").textContent = "";
  const rows = page.jobs.map((job) => {
    const row = document.createElement("tr");
    row.dataset.jobId = job.job_id;
    const cells = [job.job_id, job.model, job.status, `${Math.round(job.progress)}%`, job.created_at];
    for (const [i, text] of cells.entries()) {
      const cell = row.insertCell();
      if (i === 0) cell.append(Object.assign(document.createElement("code"), { textContent: text }));
      else cell.textContent = text;
      if (i === 2) cell.className = "status";
    }
    row.insertCell().append(...previewOf(job));
    const actions = row.insertCell();
    if (TERMINAL.has(job.status)) {
      const view = Object.assign(document.createElement("button"), { type: "button", textContent: "Show" });
      view.className = "secondary";
      view.addEventListener("click", () => followJob(job.job_id));
      actions.append(view);
    } else {
      const cancel = Object.assign(document.createElement("button"), { type: "button", textContent: "Cancel" });
      cancel.className = "secondary cancel";
      cancel.addEventListener("click", () => cancelJob(job.job_id));
      actions.append(cancel);
    }
    return row;
  });
  $("jobs").tBodies[0].replaceChildren(...rows);
}

function previewOf(job) {
  // A finished video's poster, linking to its spritesheet (evenly spaced frames); nothing before it completes.
  if (!job.thumbnail_url) return [];
  const poster = Object.assign(document.createElement("img"), {
    src: job.thumbnail_url, alt: `poster of ${job.job_id}`, className: "thumb", loading: "lazy",
  });
  if (!job.spritesheet_url) return [poster];
  const frames = Object.assign(document.createElement("a"), { href: job.spritesheet_url, target: "_blank" });
  frames.className = "frames";
  frames.append(poster);
  return [frames];
}

// ---- start ---------------------------------------------------------------------------------------

async function loadSchema() {
  const spec = await (await fetch(`${BASE}/openapi.json`)).json();
  components = spec.components.schemas;
  const body = spec.paths["/api/v1/generate"].post.requestBody.content["application/json"].schema;
  for (const option of body.oneOf || [body]) {
    const schema = resolve(option);
    const tag = schema.properties.model;
    models[tag.const ?? tag.enum[0]] = schema;
  }
  for (const name of Object.keys(models)) $("model").append(new Option(name, name));
  renderForm($("model").value);
}

function start() {
  $("api-key").value = apiKey();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
    $("key-status").textContent = "Key set for this tab.";
    refreshJobs();
  });
  $("model").addEventListener("change", () => {
    clearErrors();
    renderForm($("model").value);
  });
  $("job-form").addEventListener("submit", submitJob);
  $("cancel").addEventListener("click", () => following && cancelJob(following.id));
  $("refresh-jobs").addEventListener("click", refreshJobs);
  loadSchema().catch((error) => {
    $("form-error").textContent = `Could not read the API schema: ${error.message}`;
  });
  refreshJobs();
}

document.addEventListener("DOMContentLoaded", start);

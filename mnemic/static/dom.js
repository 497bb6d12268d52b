/*
 * Building elements and talking to the JSON API.
 *
 * Tracer names, column names and host names come from traced programs, so
 * they reach the DOM only as text nodes, textContent or setAttribute values,
 * never through innerHTML. uPlot also sets its labels with textContent.
 */

// Create an element. Attributes go through setAttribute and children
// through append(), which turns strings into text nodes.
export function el(tag, attributes, children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children || []) {
    if (child !== null && child !== undefined) {
      node.append(child);
    }
  }
  return node;
}

export function runPath(runId) {
  return `/runs/${encodeURIComponent(runId)}`;
}

export function apiRunPath(runId) {
  return `/api/runs/${encodeURIComponent(runId)}`;
}

export function comparePath(runIds) {
  return `/compare?runs=${runIds.map(encodeURIComponent).join(",")}`;
}

// Raise an Error for a failed response. Its message is the server's "error"
// field when there is one, and its status the HTTP status.
async function raiseForStatus(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") {
      message = body.error;
    }
  } catch (ignored) {
    // The body was not JSON, so the status line is the message.
  }
  const error = new Error(message);
  error.status = response.status;
  throw error;
}

export async function fetchJson(path) {
  const response = await fetch(path, {
    headers: { Accept: "application/json" },
    cache: "no-store",
  });
  if (!response.ok) {
    await raiseForStatus(response);
  }
  return response.json();
}

// POST to the API with the token the server rendered into the page, which
// it requires for every request that changes data.
export async function postJson(path) {
  const token = document.querySelector('meta[name="mnemic-csrf"]').content;
  const response = await fetch(path, {
    method: "POST",
    headers: { Accept: "application/json", "X-Mnemic-CSRF": token },
    cache: "no-store",
  });
  if (!response.ok) {
    await raiseForStatus(response);
  }
  return response.json();
}

export function setStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("status-error", Boolean(isError));
}

export function mainPane() {
  return document.getElementById("run");
}

export function renderMessage(className, text) {
  mainPane().replaceChildren(el("p", { class: className }, [text]));
}

// Ask for confirmation in a modal <dialog>, and resolve to true when the
// user presses the confirm button. The texts are set as text nodes.
export function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const confirm = el("button", { type: "submit", value: "confirm",
                                   class: "button button-danger" }, [confirmLabel]);
    const cancel = el("button", { type: "submit", value: "cancel", class: "button",
                                  autofocus: true }, ["Cancel"]);
    const dialog = el("dialog", { class: "confirm" }, [
      el("form", { method: "dialog" }, [
        el("h2", {}, [title]),
        el("p", {}, [text]),
        el("div", { class: "dialog-buttons" }, [cancel, confirm]),
      ]),
    ]);
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "confirm");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// The chat-ingest web console: reads the service's JSON API and draws one of three pages.
// Why a static page over the API (and not templates): see chat_ingest/api/routes/console.py.
// Rule kept everywhere below: text from the API goes into the page with textContent (via
// el()), never as HTML, so stored chat text can never become markup or script.
"use strict";

const ROOT = document.documentElement.dataset.root || "";
const KEY_STORAGE = "chat-ingest.api-key"; // sessionStorage: this tab only, never a cookie
const CONVERSATION_ID = /^[A-Za-z0-9_-]{1,36}$/;
const RESERVED_IDS = new Set(["health", "ready", "conversations"]);
const CONVERSATIONS_PER_PAGE = 20;
const MESSAGES_PER_PAGE = 100;
const main = document.getElementById("main");

// ---- small helpers -------------------------------------------------------------------------

/** Build an element; string children become text nodes, never HTML. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes.filter((node) => node instanceof Node));
}

function announce(text) {
  document.getElementById("status").textContent = text;
}

function uiUrl(path, params) {
  const url = new URL(ROOT + "/ui/" + path, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value) url.searchParams.set(name, value);
  }
  return url.pathname + url.search;
}

const appUrl = (appId, params) => uiUrl("apps/" + encodeURIComponent(appId), params);
const conversationUrl = (id) => uiUrl("conversations/" + encodeURIComponent(id));

function isConversationId(value) {
  return CONVERSATION_ID.test(value) && !RESERVED_IDS.has(value);
}

/** "2025-03-01 09:30:05 UTC": unambiguous whatever the reader's time zone. */
function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
}

function plural(count, word) {
  return `${Number(count).toLocaleString("en-US")} ${word}${Number(count) === 1 ? "" : "s"}`;
}

// ---- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

async function api(path, params) {
  const url = new URL(ROOT + "/api/chat/" + path, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  const key = storedKey();
  if (key) headers.Authorization = "Bearer " + key;
  let response;
  try {
    response = await fetch(url, { headers, credentials: "omit", cache: "no-store" });
  } catch {
    throw new ApiError(0, "The service could not be reached. Check that it is running.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok) return body;
  const message = body && typeof body.error === "string" ? body.error : response.statusText;
  throw new ApiError(response.status, message, response.headers.get("Retry-After"));
}

// ---- pages for errors ----------------------------------------------------------------------

/** A boxed message; a string title becomes the page's h1, a node is used as it is. */
function notice(kind, title, ...body) {
  const heading = title instanceof Node ? title : el("h1", { tabindex: "-1" }, title);
  return el("section", { class: `notice ${kind}`, role: kind === "error" ? "alert" : null },
    heading, ...body);
}

function retryButton(redraw) {
  return el("button", { type: "button", onclick: redraw }, "Try again");
}

function keyPrompt(error, redraw) {
  const input = el("input", {
    id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true,
    spellcheck: "false",
  });
  const form = el("form", {
    class: "key-form",
    onsubmit: (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY_STORAGE, input.value.trim());
      drawKeyStatus();
      redraw();
    },
  },
  el("label", { for: "api-key" }, "API key"),
  el("div", { class: "row" }, input, el("button", { type: "submit" }, "Use this key")));
  const why = storedKey()
    ? "The service did not accept this key. Enter another one."
    : "This service requires an API key to read its data.";
  const node = notice("warning", "An API key is needed", el("p", {}, why),
    el("p", { class: "muted" }, `(${error.message})`), form,
    el("p", { class: "muted" },
      "The key is kept in this browser tab only and sent to this service only."));
  setTimeout(() => input.focus(), 0);
  return node;
}

function forbiddenPage(error, redraw) {
  return notice("error", "This key may not read this data",
    el("p", {}, error.message),
    el("p", {}, "Each key reads only its own apps. Use a key of this app to see it."),
    el("button", { type: "button", onclick: () => { forgetKey(); redraw(); } }, "Use another key"));
}

function notFoundPage(title, ...body) {
  document.title = "Not found · chat-ingest console";
  return notice("error", title, ...body, el("p", {}, el("a", { href: uiUrl("") }, "Search again")));
}

/** Turn any failure of the API into a readable page; 401 asks for a key. */
function errorPage(error, redraw) {
  if (!(error instanceof ApiError)) {
    return notice("error", "Something went wrong in this page", el("p", {}, String(error)));
  }
  const wait = /^\d+$/.test(error.retryAfter || "")
    ? ` Try again in ${plural(error.retryAfter, "second")}.` : "";
  switch (error.status) {
    case 0:
      return notice("error", "No answer from the service", el("p", {}, error.message),
        retryButton(redraw));
    case 400:
      return notice("error", "The service refused this request",
        el("p", {}, error.message), el("p", {}, el("a", { href: uiUrl("") }, "Search again")));
    case 401:
      return keyPrompt(error, redraw);
    case 403:
      return forbiddenPage(error, redraw);
    case 404:
      return notFoundPage("Not found", el("p", {}, error.message));
    case 429:
      return notice("error", "Too many requests", el("p", {}, error.message + wait),
        retryButton(redraw));
    case 503:
      return notice("error", "The service cannot answer right now",
        el("p", {}, `${error.message}${wait}`), retryButton(redraw));
    default:
      return notice("error", `The service answered with an error (${error.status})`,
        el("p", {}, error.message), retryButton(redraw));
  }
}

/** Draw a page from an async builder; while it loads say so, and turn failures into pages. */
async function draw(build) {
  const redraw = () => draw(build);
  show(el("p", { class: "loading" }, "Loading…"));
  try {
    show(...[await build()].flat());
  } catch (error) {
    show(errorPage(error, redraw));
  }
  announce(main.querySelector("h1")?.textContent || "");
}

// ---- key status in the header --------------------------------------------------------------

function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  drawKeyStatus();
}

function drawKeyStatus() {
  const slot = document.getElementById("key-status");
  if (!storedKey()) {
    slot.replaceChildren();
    return;
  }
  slot.replaceChildren("Using an API key · ", el("button", {
    type: "button", class: "link",
    onclick: () => { forgetKey(); location.reload(); },
  }, "Forget key"));
}

// ---- page: search --------------------------------------------------------------------------

async function openSearch(query) {
  if (isConversationId(query)) {
    try {
      await api(encodeURIComponent(query));
      location.assign(conversationUrl(query));
      return;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
    }
  }
  location.assign(appUrl(query));
}

function homePage() {
  document.title = "chat-ingest console";
  const input = el("input", {
    id: "q", name: "q", type: "search", required: true, autofocus: true, spellcheck: "false",
    placeholder: "e.g. 0193a7c2-… or my-app",
  });
  const problem = el("p", { class: "problem", "aria-live": "polite" });
  const form = el("form", {
    class: "search", role: "search",
    onsubmit: (event) => {
      event.preventDefault();
      const query = input.value.trim();
      if (!query) {
        problem.textContent = "Type a conversation id or an app id.";
        return;
      }
      draw(async () => {
        await openSearch(query);
        return el("p", { class: "loading" }, "Opening…");
      });
    },
  },
  el("label", { for: "q" }, "Conversation id or app id"),
  el("div", { class: "row" }, input, el("button", { type: "submit" }, "Open")), problem);
  setTimeout(() => input.focus(), 0);
  return [el("h1", { tabindex: "-1" }, "Look at what landed"),
    el("p", {}, "A conversation id opens that conversation; anything else is taken as an app id ",
      "and opens that app's conversations."), form];
}

// ---- page: an app's conversations ----------------------------------------------------------

function conversationItem(conversation) {
  return el("li", { class: "conversation" },
    el("a", { href: conversationUrl(conversation.id), dir: "auto", class: "name" },
      conversation.name || conversation.id),
    el("span", { class: "meta" },
      el("span", {}, "user ", el("bdi", { class: "mono" }, conversation.from_end_user_id ?? "—")),
      el("span", {}, plural(conversation.dialogue_count, "message")),
      el("span", {}, "updated ", el("time", { datetime: conversation.updated_at },
        when(conversation.updated_at)))),
    el("span", { class: "mono id" }, conversation.id));
}

function userFilter(appId, userId) {
  const input = el("input", {
    id: "user-filter", name: "user_id", type: "search", value: userId || "", spellcheck: "false",
  });
  return el("form", {
    class: "filter", role: "search",
    onsubmit: (event) => {
      event.preventDefault();
      location.assign(appUrl(appId, { user_id: input.value.trim() }));
    },
  },
  el("label", { for: "user-filter" }, "Filter by user id"),
  el("div", { class: "row" }, input, el("button", { type: "submit" }, "Filter"),
    userId ? el("a", { href: appUrl(appId), class: "button" }, "Show all users") : null));
}

async function appPage(appId, params) {
  const userId = params.get("user_id");
  const cursor = params.get("cursor");
  document.title = `${appId} · chat-ingest console`;
  if (!appId) return notFoundPage("No app id", el("p", {}, "This address names no app."));
  const page = await api("conversations", {
    app_id: appId, user_id: userId, limit: CONVERSATIONS_PER_PAGE, cursor,
  });
  const heading = el("h1", { tabindex: "-1" }, "App ", el("bdi", { class: "mono" }, appId));
  const scope = userId ? el("span", {}, " of user ", el("bdi", { class: "mono" }, userId)) : "";
  if (page.data.length === 0 && !cursor) {
    const title = userId ? "No conversations for this user" : "No conversations found for this app";
    return [heading, userFilter(appId, userId), notice("warning", el("h2", {}, title),
      el("p", {}, "Nothing is stored for app ", el("bdi", { class: "mono" }, appId), scope,
        ". Check the spelling: ids are case-sensitive."),
      el("p", {}, el("a", { href: uiUrl("") }, "Search again")))];
  }
  const pager = el("nav", { class: "pager", "aria-label": "Pages" },
    cursor ? el("a", { href: appUrl(appId, { user_id: userId }) }, "← First page") : null,
    page.has_more
      ? el("a", { href: appUrl(appId, { user_id: userId, cursor: page.next_cursor }), rel: "next" },
        "Next page →")
      : null);
  return [heading, userFilter(appId, userId),
    el("p", { class: "muted" }, "Conversations, most recently updated first", scope, "."),
    el("ul", { class: "conversations" }, page.data.map(conversationItem)), pager];
}

// ---- page: one conversation ----------------------------------------------------------------

function fileLink(file) {
  const label = [file.type, file.belongs_to].filter(Boolean).join(" · ");
  // Only web addresses become links; a server path is shown as text. Never loaded here.
  const target = /^https?:\/\//i.test(file.url)
    ? el("a", { href: file.url, rel: "noopener noreferrer", target: "_blank", dir: "auto" },
      file.url)
    : el("span", { class: "mono", dir: "auto" }, file.url);
  return el("li", {}, el("span", { class: "tag" }, label), " ", target);
}

function details(summary, value) {
  return el("details", {}, el("summary", {}, summary),
    el("pre", { dir: "auto" }, JSON.stringify(value, null, 2)));
}

/** "provider / model", or null: Dify's chatflow (advanced-chat) messages name no model. */
function modelName(message) {
  const parts = [message.model_provider, message.model_id].filter(Boolean);
  return parts.length ? parts.join(" / ") : null;
}

function messageMeta(message) {
  return el("dl", { class: "meta" },
    el("dt", {}, "Model"), el("dd", {}, modelName(message) ?? "—"),
    el("dt", {}, "Tokens"), el("dd", {}, `${message.message_tokens} in · ${message.answer_tokens} out`),
    el("dt", {}, "Latency"), el("dd", {}, `${Number(message.provider_response_latency)} s`),
    el("dt", {}, "Price"),
    el("dd", {}, message.total_price === null ? "—" : `${message.total_price} ${message.currency}`),
    el("dt", {}, "Client message id"),
    el("dd", { class: "mono" }, message.client_message_id ?? "—"),
    el("dt", {}, "Message id"), el("dd", { class: "mono" }, message.id));
}

function messageItem(message) {
  const extra = { metadata: message.message_metadata, inputs: message.inputs,
    message: message.message, status: message.status, error: message.error };
  return el("li", { class: "turn", id: `m-${message.id}`, tabindex: "-1" },
    el("div", { class: "when" }, el("time", { datetime: message.created_at },
      when(message.created_at))),
    el("div", { class: "bubble query" }, el("span", { class: "who" }, "User"),
      el("p", { class: "text", dir: "auto" }, message.query)),
    el("div", { class: "bubble answer" }, el("span", { class: "who" }, message.model_id || "Assistant"),
      el("p", { class: "text", dir: "auto" }, message.answer)),
    message.files.length ? el("ul", { class: "files", "aria-label": "Files" },
      message.files.map(fileLink)) : null,
    messageMeta(message),
    details("Metadata and inputs", extra));
}

function conversationHeader(conversation) {
  const user = conversation.from_end_user_id;
  const row = (term, ...value) => [el("dt", {}, term), el("dd", {}, ...value)];
  return [
    el("h1", { tabindex: "-1", dir: "auto" }, conversation.name || conversation.id),
    el("dl", { class: "header" },
      row("App", el("a", { href: appUrl(conversation.app_id) },
        el("bdi", { class: "mono" }, conversation.app_id))),
      row("User", user === null ? "—" : el("a", {
        href: appUrl(conversation.app_id, { user_id: user }) }, el("bdi", { class: "mono" }, user))),
      row("Messages", String(conversation.dialogue_count)),
      row("Created", when(conversation.created_at)),
      row("Updated", when(conversation.updated_at)),
      row("Status", `${conversation.status} · from ${conversation.from_source}`),
      row("Conversation id", el("span", { class: "mono" }, conversation.id))),
    Object.keys(conversation.inputs || {}).length
      ? details("Conversation inputs", conversation.inputs) : null,
  ];
}

/** The chat list with a "show more" button that appends the next page in place. */
function messageList(conversation, firstPage) {
  const list = el("ol", { class: "chat", "aria-label": "Messages, oldest first" });
  const counter = el("p", { class: "counter", "aria-live": "polite" });
  const more = el("button", { type: "button", class: "more" }, "Show more messages");
  const problem = el("div");
  let cursor = null;
  const append = (page) => {
    const items = page.data.map(messageItem);
    list.append(...items);
    cursor = page.next_cursor;
    more.hidden = !page.has_more;
    counter.textContent =
      `Showing ${list.children.length.toLocaleString("en-US")} of ${plural(conversation.dialogue_count, "message")}, oldest first.`;
    return items;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    problem.replaceChildren();
    try {
      const items = append(await api(`${encodeURIComponent(conversation.id)}/messages`,
        { limit: MESSAGES_PER_PAGE, cursor }));
      items[0]?.focus();
    } catch (error) {
      problem.replaceChildren(errorPage(error, () => more.click()));
    } finally {
      more.disabled = false;
    }
  });
  append(firstPage);
  if (!firstPage.data.length) counter.textContent = "This conversation has no messages.";
  return [counter, list, problem, more];
}

async function conversationPage(id) {
  document.title = `Conversation · chat-ingest console`;
  if (!isConversationId(id)) {
    return notFoundPage("This is not a conversation id",
      el("p", {}, "“", el("bdi", { class: "mono" }, id), "” cannot be a conversation id: ids are ",
        "1 to 36 letters, digits, “-” or “_” (and not health, ready or conversations)."));
  }
  const path = encodeURIComponent(id);
  let conversation, firstPage;
  try {
    [conversation, firstPage] = await Promise.all([
      api(path), api(`${path}/messages`, { limit: MESSAGES_PER_PAGE })]);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    return notFoundPage("Conversation not found",
      el("p", {}, "No conversation ", el("bdi", { class: "mono" }, id),
        " is stored here, or it belongs to an app that this key may not read."));
  }
  document.title = `${conversation.name || id} · chat-ingest console`;
  return [...conversationHeader(conversation), ...messageList(conversation, firstPage)];
}

// ---- routing -------------------------------------------------------------------------------

function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

function route() {
  const path = location.pathname.slice(ROOT.length);
  const params = new URLSearchParams(location.search);
  const app = path.match(/^\/ui\/apps\/(.*)$/);
  const conversation = path.match(/^\/ui\/conversations\/(.*)$/);
  if (path === "/ui/" || path === "/ui") return draw(homePage);
  if (app) {
    const appId = decodeSegment(app[1]);
    if (appId === null) return draw(() => notFoundPage("This address is malformed"));
    return draw(() => appPage(appId, params));
  }
  if (conversation) {
    const id = decodeSegment(conversation[1]);
    return draw(() => conversationPage(id ?? conversation[1]));
  }
  return draw(() => notFoundPage("Page not found",
    el("p", {}, "The console has three pages: search, an app's conversations, a conversation.")));
}

drawKeyStatus();
route();

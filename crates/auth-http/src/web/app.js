"use strict";
// hass-auth's landing and profile page (/ and /profile). It is an OAuth client of this server:
// the sign-in link goes to /auth/authorize with client_id = this origin + "/" and a random state;
// the code that comes back (?code=&state=) is exchanged at /auth/token. Tokens live in
// sessionStorage (the refresh token only with "keep me logged in", otherwise in memory). The
// profile talks to the websocket API with the access token.
(function () {
  const H = window.HassAuth;
  const $ = (id) => document.getElementById(id);
  const SESSION = "hass-auth.session";
  const PENDING = "hass-auth.pending-state";
  const clientId = location.origin + "/";
  const tokenTypes = { normal: "Sign-in", long_lived_access_token: "Long-lived access token", system: "System" };
  let session = null; // {access_token, expires_at (ms), refresh_token?}
  let memoryRefresh = null;
  let socket = null;

  // ----- page state -----

  function status(text) { $("status").textContent = text || ""; }
  function showError(text) { $("error").textContent = text || ""; }

  class SignedOut extends Error {}

  function loadSession() {
    try { return JSON.parse(sessionStorage.getItem(SESSION)); } catch (_) { return null; }
  }

  function persist() {
    if (session) sessionStorage.setItem(SESSION, JSON.stringify(session));
  }

  function forget() {
    sessionStorage.removeItem(SESSION);
    session = null;
    memoryRefresh = null;
    if (socket) socket.close();
    socket = null;
  }

  function randomState() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function showSignedOut(notice) {
    const state = randomState();
    sessionStorage.setItem(PENDING, state);
    const params = new URLSearchParams({ response_type: "code", client_id: clientId, redirect_uri: clientId, state: state });
    $("signin").href = "/auth/authorize?" + params;
    $("profile").hidden = true;
    $("signout").hidden = true;
    $("signed-out").hidden = false;
    $("mfa-setup").hidden = true;
    document.title = "hass-auth";
    status(notice || "");
  }

  function showProfileView() {
    $("signed-out").hidden = true;
    $("profile").hidden = false;
    $("signout").hidden = false;
    document.title = "Profile · hass-auth";
  }

  // ----- tokens -----

  async function tokenRequest(fields) {
    return H.fetchJson("POST", "/auth/token", new URLSearchParams(fields));
  }

  // Exchanges ?code= for tokens, if the state is the one this tab sent.
  async function exchange(query) {
    const expected = sessionStorage.getItem(PENDING);
    sessionStorage.removeItem(PENDING);
    if (query.has("error")) { showError("Sign-in failed: " + query.get("error")); return; }
    if (!expected || query.get("state") !== expected) {
      showError("This sign-in was not started from this page. Please sign in again.");
      return;
    }
    const result = await tokenRequest({ grant_type: "authorization_code", client_id: clientId, code: query.get("code") });
    const data = result.data || {};
    if (!result.ok) { showError("Sign-in failed: " + (data.error_description || data.error || result.status)); return; }
    const keep = query.get("storeToken") === "true";
    session = { access_token: data.access_token, expires_at: Date.now() + data.expires_in * 1000 };
    if (keep) session.refresh_token = data.refresh_token; else memoryRefresh = data.refresh_token;
    persist();
  }

  // A valid access token, renewed with the refresh token when it is (nearly) expired or `force`.
  async function accessToken(force) {
    if (!session) throw new SignedOut();
    if (!force && session.expires_at - Date.now() > 30000) return session.access_token;
    const refresh = session.refresh_token || memoryRefresh;
    if (!refresh) throw new SignedOut();
    const result = await tokenRequest({ grant_type: "refresh_token", client_id: clientId, refresh_token: refresh });
    if (result.status === 400 || result.status === 403) throw new SignedOut();
    if (!result.ok || !result.data) throw new Error("Cannot renew the session (" + result.status + ")");
    session.access_token = result.data.access_token;
    session.expires_at = Date.now() + result.data.expires_in * 1000;
    persist();
    return session.access_token;
  }

  // ----- websocket -----

  function openSocket(token) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/websocket");
      const pending = new Map();
      let nextId = 1;
      let ready = false;
      const api = {
        get open() { return ws.readyState === WebSocket.OPEN; },
        close() { ws.close(); },
        command(message, timeout) {
          return new Promise((res, rej) => {
            if (ws.readyState !== WebSocket.OPEN) { rej(new Error("The connection to the server was lost")); return; }
            const id = nextId++;
            const timer = setTimeout(() => { pending.delete(id); rej(new Error("The server did not answer")); }, timeout || 10000);
            pending.set(id, { res, rej, timer });
            ws.send(JSON.stringify(Object.assign({ id: id }, message)));
          });
        },
      };
      ws.onmessage = (event) => {
        let msg;
        try { msg = JSON.parse(event.data); } catch (_) { return; }
        if (msg.type === "auth_required") ws.send(JSON.stringify({ type: "auth", access_token: token }));
        else if (msg.type === "auth_ok") { ready = true; resolve(api); }
        else if (msg.type === "auth_invalid") { const error = new Error(msg.message); error.authInvalid = true; reject(error); }
        else if (msg.type === "result" && pending.has(msg.id)) {
          const call = pending.get(msg.id);
          pending.delete(msg.id);
          clearTimeout(call.timer);
          if (msg.success) call.res(msg.result);
          else { const error = new Error((msg.error && msg.error.message) || "Failed"); error.code = msg.error && msg.error.code; call.rej(error); }
        }
      };
      ws.onclose = () => {
        if (!ready) reject(new Error("Cannot connect to the server"));
        for (const call of pending.values()) { clearTimeout(call.timer); call.rej(new Error("The connection to the server was lost")); }
        pending.clear();
        if (socket === api) socket = null;
      };
    });
  }

  async function connect() {
    if (socket && socket.open) return socket;
    let opened;
    try { opened = await openSocket(await accessToken(false)); }
    catch (error) {
      if (!error.authInvalid) throw error;
      try { opened = await openSocket(await accessToken(true)); }
      catch (again) { throw again.authInvalid ? new SignedOut() : again; }
    }
    socket = opened;
    return socket;
  }

  async function command(message, timeout) {
    return (await connect()).command(message, timeout);
  }

  // Runs `action`; a lost session leads back to the sign-in link, other errors are shown.
  async function guarded(action) {
    showError("");
    try { await action(); }
    catch (error) {
      if (error instanceof SignedOut) { forget(); showSignedOut("Your session has ended. Please sign in again."); $("title").focus(); }
      else showError(error.message);
    }
  }

  // ----- profile -----

  async function loadUser() {
    const user = await command({ type: "auth/current_user" });
    $("user-name").textContent = user.name || "(no name)";
    $("user-role").textContent = user.is_owner ? "Owner" : user.is_admin ? "Administrator" : "User";
    $("user-credentials").textContent = (user.credentials || [])
      .map((c) => c.auth_provider_type + (c.auth_provider_id ? " (" + c.auth_provider_id + ")" : "")).join(", ") || "—";
    renderModules(user.mfa_modules || []);
    return loadRecovery(user.mfa_modules || []);
  }

  // ----- recovery codes -----

  async function loadRecovery(modules) {
    const anyEnabled = modules.some((m) => m.enabled);
    $("recovery").hidden = !anyEnabled;
    if (!anyEnabled) { $("recovery-new").hidden = true; return null; }
    const info = await command({ type: "auth/recovery_codes" });
    $("recovery-status").textContent = info
      ? info.remaining + " of " + info.total + " codes left (made " + when(info.created_at) + ")."
      : "You have no recovery codes yet.";
    return info;
  }

  async function makeRecoveryCodes() {
    const made = await command({ type: "auth/recovery_codes/generate" });
    $("recovery-codes").replaceChildren(...made.codes.map((code) => H.el("li", { textContent: code })));
    $("recovery-new").hidden = false;
    $("recovery-heading").focus();
    const info = await command({ type: "auth/recovery_codes" });
    if (info) $("recovery-status").textContent = info.remaining + " of " + info.total + " codes left.";
  }

  $("recovery-generate").addEventListener("click", () => guarded(makeRecoveryCodes));
  $("recovery-done").addEventListener("click", () => {
    $("recovery-codes").replaceChildren();
    $("recovery-new").hidden = true;
    $("recovery-generate").focus();
  });

  function renderModules(modules) {
    const list = $("mfa-list");
    if (modules.length === 0) { list.replaceChildren(H.el("li", { textContent: "No multi-factor authentication is configured on this server." })); return; }
    list.replaceChildren(...modules.map((module) => {
      const badge = H.el("span", { className: "badge" + (module.enabled ? " on" : ""), textContent: module.enabled ? "Enabled" : "Not enabled" });
      const button = H.el("button", {
        type: "button", className: module.enabled ? "secondary" : "",
        textContent: module.enabled ? "Disable" : "Enable",
        "aria-label": (module.enabled ? "Disable " : "Enable ") + module.name,
        "data-module": module.id,
      });
      button.addEventListener("click", () => guarded(() => module.enabled ? disable(module) : enable(module)));
      const item = H.el("li", { "data-module": module.id }, H.el("span", {}, H.el("strong", { textContent: module.name }), " ", badge), button);
      if (module.enabled) guarded(() => loadKeys(module, item));
      return item;
    }));
  }

  // Modules that keep several named keys (passkeys) list them, each with a Remove button, and
  // offer to add one more.
  async function loadKeys(module, item) {
    let keys;
    try { keys = (await command({ type: "auth/mfa_credentials", mfa_module_id: module.id })).credentials; }
    catch (error) { if (error.code === "not_supported") return; throw error; }
    const rows = keys.map((key) => {
      const remove = H.el("button", { type: "button", className: "secondary", textContent: "Remove", "aria-label": "Remove key " + key.name, "data-key": key.id });
      remove.addEventListener("click", () => guarded(() => removeKey(module, key)));
      const used = key.last_used_at ? "last used " + when(key.last_used_at) : "never used";
      return H.el("li", { "data-key": key.id }, H.el("span", {}, H.el("strong", { textContent: key.name }), " ",
        H.el("small", { textContent: "added " + when(key.created_at) + ", " + used })), remove);
    });
    const add = H.el("button", { type: "button", textContent: "Add a key", "aria-label": "Add a key to " + module.name, "data-add-key": module.id });
    add.addEventListener("click", () => guarded(() => enable(module)));
    item.after(H.el("li", { className: "keys" }, H.el("ul", { className: "modules", "aria-label": module.name + " keys" }, ...rows), add));
  }

  async function removeKey(module, key) {
    status("");
    await command({ type: "auth/mfa_credentials/remove", mfa_module_id: module.id, credential_id: key.id });
    await loadUser();
    status("Removed key " + key.name + ".");
  }

  let setup = null; // {module, flow}

  async function enable(module) {
    status("");
    const step = await command({ type: "auth/setup_mfa", mfa_module_id: module.id });
    showSetupStep(module, step);
  }

  function showSetupStep(module, step) {
    if (step.type === "create_entry") {
      closeSetup();
      // A first second factor comes with recovery codes, shown once.
      return loadUser().then(async (recovery) => {
        status(module.name + " is enabled.");
        if (!recovery) await makeRecoveryCodes();
      });
    }
    if (step.type === "abort") {
      closeSetup();
      showError(H.message(step.reason));
      return null;
    }
    const placeholders = step.description_placeholders || {};
    const previous = setup && setup.flow.flow_id === step.flow_id ? H.values($("mfa-fields")) : {};
    const first = !setup || setup.flow.flow_id !== step.flow_id;
    setup = { module: module, flow: step };
    $("mfa-setup").hidden = false;
    // Changing an enrolment (one more passkey) first asks for the current second factor.
    const confirming = step.step_id === "current_code";
    const request = confirming ? placeholders.webauthn_request : null;
    $("mfa-setup-title").textContent = confirming ? "Confirm it is you" : "Set up " + module.name;
    const box = confirming ? null : H.renderSetupBox($("mfa-setup-box"), placeholders, module.name);
    if (confirming) $("mfa-setup-box").hidden = true;
    const passkey = !!placeholders.webauthn_create;
    $("mfa-hint").textContent = request
      ? "Use one of your passkeys to confirm it is you before adding another."
      : confirming
        ? "Enter the current code of " + module.name + " to confirm it is you."
        : passkey
          ? "Name the key (for example the device it is on), press Add key and follow your browser."
          : box
            ? "Scan the QR code with your authenticator app (or enter the key), then enter the code it shows."
            : "Fill in the form to enable " + module.name + ".";
    $("mfa-submit").textContent = request ? "Use passkey" : confirming ? "Continue" : passkey ? "Add key" : "Enable";
    // The new credential and the assertion are not typed: the browser makes them when the form is sent.
    const made = request ? "assertion" : passkey ? "credential" : null;
    const schema = made ? (step.data_schema || []).filter((spec) => spec.name !== made) : step.data_schema;
    const focus = H.renderFields($("mfa-fields"), schema, "mfa-field-", previous, step.errors, "mfa-hint mfa-error");
    // A refused passkey is not a wrong "code".
    const refused = request && step.errors && /^invalid_(code|auth)$/.test(step.errors.base || "");
    $("mfa-error").textContent = H.errorText(refused ? { base: "passkey_refused" } : step.errors);
    if (first) $("mfa-setup-title").focus();
    else if (focus) { focus.focus(); if (focus.select) focus.select(); }
    return null;
  }

  function closeSetup() {
    setup = null;
    $("mfa-setup").hidden = true;
    $("mfa-fields").replaceChildren();
    $("mfa-error").textContent = "";
  }

  $("mfa-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!setup || $("mfa-submit").disabled) return;
    const current = setup;
    $("mfa-submit").disabled = true;
    guarded(async () => {
      try {
        // The server does not answer input that fails the form's schema: give up after 10 s.
        const input = H.values($("mfa-fields"));
        const placeholders = current.flow.description_placeholders || {};
        const create = placeholders.webauthn_create;
        const request = current.flow.step_id === "current_code" ? placeholders.webauthn_request : null;
        if (create && !String(input.name || "").trim()) { $("mfa-error").textContent = H.message("invalid_name"); $("mfa-field-name").focus(); return; }
        if (request) input.assertion = await H.webauthn.get(request);
        if (create) input.credential = await H.webauthn.create(create);
        const step = await command({ type: "auth/setup_mfa", flow_id: current.flow.flow_id, user_input: input }, 10000);
        await showSetupStep(current.module, step);
      } finally { $("mfa-submit").disabled = false; }
    });
  });

  $("mfa-cancel").addEventListener("click", () => {
    const module = setup && setup.module;
    closeSetup();
    const button = module && document.querySelector('#mfa-list button[data-module="' + CSS.escape(module.id) + '"]');
    if (button) button.focus();
  });

  async function disable(module) {
    status("");
    await command({ type: "auth/depose_mfa", mfa_module_id: module.id });
    await loadUser();
    status(module.name + " is disabled.");
  }

  function when(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString();
  }

  async function loadTokens() {
    const tokens = await command({ type: "auth/refresh_tokens" });
    tokens.sort((a, b) => (b.is_current - a.is_current) || String(b.created_at).localeCompare(String(a.created_at)));
    $("tokens").replaceChildren(...tokens.map((token) => {
      const client = token.client_name || token.client_id || "—";
      const clientCell = H.el("td", {}, client);
      if (token.is_current) clientCell.append(" ", H.el("span", { className: "badge on", textContent: "This browser" }));
      const used = H.el("td", {}, when(token.last_used_at));
      if (token.last_used_ip) used.append(H.el("small", { textContent: "from " + token.last_used_ip }));
      const button = H.el("button", {
        type: "button", className: "secondary", textContent: "Revoke",
        "aria-label": "Revoke " + client + (token.is_current ? " (this browser: signs you out)" : ""),
        "data-token": token.id,
      });
      button.addEventListener("click", () => guarded(() => revoke(token)));
      return H.el("tr", { "data-token": token.id, "data-current": String(token.is_current) },
        clientCell,
        H.el("td", { textContent: tokenTypes[token.type] || token.type }),
        H.el("td", { textContent: when(token.created_at) }),
        used,
        H.el("td", {}, button));
    }));
  }

  const historyResults = {
    success: "Signed in", invalid_auth: "Wrong password", invalid_code: "Wrong code", too_many_retry: "Too many wrong codes",
  };

  async function loadHistory() {
    const events = await command({ type: "auth/sign_in_history" });
    if (events.length === 0) {
      $("history").replaceChildren(H.el("tr", {}, H.el("td", { colSpan: 5, textContent: "No sign-ins recorded yet." })));
      return;
    }
    $("history").replaceChildren(...events.map((event) => {
      const ok = event.result === "success";
      const method = event.provider_type + (event.provider_id ? " (" + event.provider_id + ")" : "")
        + (event.mfa.length ? " + " + event.mfa.map((m) => m === "recovery_code" ? "recovery code" : m).join(" + ") : "");
      return H.el("tr", { "data-result": event.result },
        H.el("td", { textContent: when(event.time) }),
        H.el("td", {}, H.el("span", { className: "badge" + (ok ? " on" : " bad"), textContent: historyResults[event.result] || event.result })),
        H.el("td", { textContent: event.ip || "—" }),
        H.el("td", { textContent: event.client_id || "—" }),
        H.el("td", { textContent: method }));
    }));
  }

  async function revoke(token) {
    await command({ type: "auth/delete_refresh_token", refresh_token_id: token.id });
    if (token.is_current) {
      forget();
      showSignedOut("This browser's session was revoked: you are signed out.");
      $("title").focus();
      return;
    }
    await loadTokens();
    status("Revoked " + (token.client_name || token.client_id || "the token") + ".");
  }

  async function signOut() {
    const refresh = session && (session.refresh_token || memoryRefresh);
    try {
      if (refresh) {
        await fetch("/auth/revoke", { method: "POST", credentials: "same-origin", body: new URLSearchParams({ token: refresh }) });
      } else if (session) {
        const tokens = await command({ type: "auth/refresh_tokens" });
        const current = tokens.find((t) => t.is_current);
        if (current) await command({ type: "auth/delete_refresh_token", refresh_token_id: current.id });
      }
    } catch (_) {
      // Signed out locally either way.
    }
    forget();
    showSignedOut("You are signed out.");
    $("title").focus();
  }

  $("signout").addEventListener("click", () => { showError(""); signOut(); });

  async function boot() {
    session = loadSession();
    const query = new URLSearchParams(location.search);
    if (query.has("code") || query.has("error")) {
      history.replaceState(null, "", location.pathname);
      forget();
      try { await exchange(query); } catch (_) { showError("Cannot reach the server"); }
    }
    if (!session) { showSignedOut(); return; }
    showProfileView();
    status("Loading…");
    await guarded(async () => {
      await loadUser();
      await loadTokens();
      await loadHistory();
      status("");
    });
  }
  boot();
})();

"use strict";
// hass-auth's login page (/auth/authorize): renders any login flow from its data_schema, then
// sends the browser to redirect_uri with the code (http-api.md §11).
(function () {
  const H = window.HassAuth;
  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(location.search);
  const clientId = query.get("client_id");
  const redirectUri = query.get("redirect_uri");
  const state = query.get("state");
  const challenge = query.get("code_challenge");
  const challengeMethod = query.get("code_challenge_method");
  const resume = query.get("resume");
  // The flow that left for an identity provider (external step), kept for the way back.
  const EXTERNAL_KEY = "hass-auth-external";
  let flow = null;
  let handler = null;

  function showError(text) { $("error").textContent = text || ""; }
  function dangerous(uri) { return /^\s*(javascript|data|vbscript|file|about):/i.test(uri || ""); }

  function post(url, body) {
    // text/plain, like Home Assistant's page: a "simple" request, no CORS preflight.
    return H.fetchJson("POST", url, JSON.stringify(body), { "Content-Type": "text/plain;charset=UTF-8" });
  }

  // A step answered with a passkey: its placeholders carry the WebAuthn request options.
  function passkeyStep(step) { return !!(step && step.description_placeholders && step.description_placeholders.webauthn_request); }

  // A required chain's passkey enrolment: its placeholders carry the WebAuthn creation options.
  function createStep(step) { return !!(step && step.description_placeholders && step.description_placeholders.webauthn_create); }

  // Title, hint and button text for each step of a login flow.
  function describe(step) {
    const placeholders = step.description_placeholders || {};
    if (createStep(step)) {
      const name = placeholders.mfa_module_name || "a passkey";
      return { title: "Set up " + name, hint: "This account needs " + name + ". Name the key (for example the device it is on), then press Add key and follow your browser.", button: "Add key" };
    }
    if (passkeyStep(step)) {
      return { title: step.step_id === "mfa" ? "Two-factor authentication" : "Sign in with a passkey", hint: "Use your passkey or security key to confirm that it is you.", button: "Use passkey" };
    }
    const module = placeholders.mfa_module_name || "your authenticator app";
    switch (step.step_id) {
      case "init":
        return { title: "Sign in", hint: "", button: "Log in" };
      case "select_mfa_module":
        return { title: "Two-factor authentication", hint: "Choose how you want to confirm that it is you.", button: "Next" };
      case "mfa":
        return { title: "Two-factor authentication", hint: "Enter the code from " + module + ". Lost your device? Enter one of your recovery codes instead.", button: "Verify" };
      case "mfa_setup":
        return {
          title: "Set up " + module,
          hint: placeholders.qr_code
            ? "This account needs " + module + ". Scan the QR code with your authenticator app, then enter the code it shows."
            : "This account needs " + module + ". Set it up to continue.",
          button: "Verify",
        };
      default:
        return { title: "Sign in", hint: "", button: "Next" };
    }
  }

  function render(step) {
    const sameStep = flow && flow.flow_id === step.flow_id && flow.step_id === step.step_id;
    const previous = sameStep ? H.values($("fields")) : {};
    const newStep = !sameStep;
    flow = step;
    const placeholders = step.description_placeholders || {};
    const text = describe(step);
    $("title").textContent = text.title;
    document.title = text.title + " · hass-auth";
    $("hint").textContent = text.hint;
    $("submit").textContent = text.button;
    const progress = placeholders.chain_step && placeholders.chain_length
      ? "Step " + placeholders.chain_step + " of " + placeholders.chain_length : "";
    $("progress").textContent = progress;
    $("progress").hidden = !progress;
    $("providers").hidden = step.step_id !== "init" || $("providers").children.length < 2;
    if (step.step_id === "mfa_setup") H.renderSetupBox($("setup"), placeholders, placeholders.mfa_module_name || "your authenticator app");
    else $("setup").hidden = true;
    // The assertion is not typed: the browser makes it when the button is pressed.
    const browserMade = passkeyStep(step) ? "assertion" : createStep(step) ? "credential" : null;
    const schema = browserMade ? (step.data_schema || []).filter((spec) => spec.name !== browserMade) : step.data_schema;
    const focus = H.renderFields($("fields"), schema, "field-", previous, step.errors, "hint error");
    // A refused passkey is not a wrong "code".
    const refused = passkeyStep(step) && step.errors && /^invalid_(code|auth)$/.test(step.errors.base || "");
    let errorText = H.errorText(refused ? { base: "passkey_refused" } : step.errors);
    if (step.errors && step.errors.base === "mfa_locked" && placeholders.mfa_locked_minutes) {
      errorText += " (in about " + placeholders.mfa_locked_minutes + " min)";
    }
    showError(errorText);
    if (focus) { focus.focus(); if (focus.select) focus.select(); }
    else if (newStep) $("title").focus();
  }

  // An external step (single sign-on): a button that sends the browser to the identity provider.
  function renderExternal(step) {
    flow = step;
    const name = (step.description_placeholders || {}).provider_name || "your identity provider";
    $("title").textContent = "Sign in with " + name;
    document.title = "Sign in with " + name + " · hass-auth";
    $("hint").textContent = "You will sign in at " + name + " and then come back here.";
    $("submit").textContent = "Continue with " + name;
    $("progress").hidden = true;
    $("setup").hidden = true;
    $("providers").hidden = $("providers").children.length < 2;
    $("fields").replaceChildren();
    showError("");
    $("submit").focus();
  }

  function leaveForExternal(step) {
    if (!/^https?:/i.test(step.url || "")) { showError("Refusing to go to an unsafe address"); return; }
    sessionStorage.setItem(EXTERNAL_KEY, JSON.stringify({ search: location.search, flow_id: step.flow_id, remember: $("remember").checked }));
    $("submit").disabled = true;
    location.assign(step.url);
  }

  // Moves a flow on after its external step is done.
  async function continueFlow(flowId) {
    let result;
    try { result = await post("/auth/login_flow/" + flowId, { client_id: clientId }); }
    catch (_) { showError("Cannot reach the server"); return; }
    handle(result);
  }

  function finish(code) {
    if (dangerous(redirectUri)) { showError("Refusing to redirect to an unsafe address"); return; }
    let url = redirectUri + (redirectUri.includes("?") ? "&" : "?") + "code=" + encodeURIComponent(code);
    if (state) url += "&state=" + encodeURIComponent(state);
    if ($("remember").checked) url += "&storeToken=true";
    $("submit").disabled = true;
    location.assign(url);
  }

  function handle(result) {
    const data = result.data || {};
    if (result.status !== 200) { showError(data.message || ("Error " + result.status)); return; }
    if (data.type === "form") render(data);
    else if (data.type === "external") renderExternal(data);
    else if (data.type === "external_done") continueFlow(data.flow_id);
    else if (data.type === "create_entry") finish(data.result);
    else if (data.type === "abort") { flow = null; start(handler, H.message(data.reason)); }
    else showError(H.message("unknown_error"));
  }

  // Starts a login flow with `chosen` provider; `notice` stays shown (e.g. why the last one ended).
  async function start(chosen, notice) {
    handler = chosen;
    for (const button of $("providers").children) button.setAttribute("aria-pressed", String(button.dataset.key === JSON.stringify(chosen)));
    const body = { client_id: clientId, handler: chosen, redirect_uri: redirectUri };
    if (challenge) { body.code_challenge = challenge; body.code_challenge_method = challengeMethod || "S256"; }
    let result;
    try { result = await post("/auth/login_flow", body); } catch (_) { showError("Cannot reach the server"); return; }
    handle(result);
    if (notice && !$("error").textContent) showError(notice);
  }

  $("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!flow || $("submit").disabled) return;
    if (flow.type === "external") { leaveForExternal(flow); return; }
    const input = Object.assign(H.values($("fields")), { client_id: clientId });
    $("submit").disabled = true;
    let result = null;
    try {
      if (passkeyStep(flow)) {
        showError("");
        input.assertion = await H.webauthn.get(flow.description_placeholders.webauthn_request);
      } else if (createStep(flow)) {
        showError("");
        if (!String(input.name || "").trim()) { showError(H.message("invalid_name")); return; }
        input.credential = await H.webauthn.create(flow.description_placeholders.webauthn_create);
      }
      result = await post("/auth/login_flow/" + flow.flow_id, input);
    }
    catch (error) { showError(error && error.passkey ? error.message : "Cannot reach the server"); }
    finally { $("submit").disabled = false; }
    if (result) handle(result);
  });

  // Which client gets the tokens, before anything is typed: its client_id's host (issue 14
  // item 12). Text only (textContent), never markup.
  function showClient() {
    let host = "";
    try { host = new URL(clientId).host; } catch (_) { host = ""; }
    $("client-host").textContent = host || clientId;
    $("client").hidden = false;
  }

  // Back from the identity provider (/auth/oidc/callback sent us here): reopen the page the
  // flow started on, with the flow to resume.
  function backFromExternal() {
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(EXTERNAL_KEY) || "null"); } catch (_) { saved = null; }
    sessionStorage.removeItem(EXTERNAL_KEY);
    if (saved && /^\?/.test(saved.search) && /^[0-9a-f]{32}$/.test(saved.flow_id)) {
      const search = new URLSearchParams(saved.search);
      search.set("resume", saved.flow_id);
      sessionStorage.setItem(EXTERNAL_KEY + ".remember", String(!!saved.remember));
      location.replace("/auth/authorize?" + search.toString());
      return;
    }
    $("title").textContent = "Signed in";
    $("hint").textContent = "You signed in at your identity provider. Go back to the window where you started signing in.";
    $("submit").hidden = true;
  }

  // A flow whose external step finished while the page was away.
  async function resumeFlow() {
    let result;
    try { result = await H.fetchJson("GET", "/auth/login_flow/" + encodeURIComponent(resume)); } catch (_) { return false; }
    if (result.status !== 200 || !result.data || result.data.type !== "external_done") return false;
    handler = result.data.handler;
    const remember = sessionStorage.getItem(EXTERNAL_KEY + ".remember");
    sessionStorage.removeItem(EXTERNAL_KEY + ".remember");
    if (remember !== null && !$("remember-row").hidden) $("remember").checked = remember === "true";
    await continueFlow(result.data.flow_id);
    return true;
  }

  async function boot() {
    if (query.get("external_done")) { backFromExternal(); return; }
    if (!clientId || !redirectUri) { showError("This page needs client_id and redirect_uri"); $("submit").disabled = true; return; }
    showClient();
    if (dangerous(redirectUri)) { showError("Refusing an unsafe redirect_uri"); $("submit").disabled = true; return; }
    let result;
    try { result = await H.fetchJson("GET", "/auth/providers"); } catch (_) { showError("Cannot reach the server"); return; }
    if (result.status === 400 && result.data && result.data.code === "onboarding_required") {
      location.assign("/onboarding.html" + location.search); return;
    }
    if (result.status !== 200) { showError((result.data && result.data.message) || "Cannot load sign-in methods"); return; }
    const providers = result.data.providers;
    let sameOrigin = false;
    try { sameOrigin = new URL(clientId).origin === location.origin; } catch (_) { sameOrigin = false; }
    $("remember-row").hidden = !sameOrigin;
    $("remember").checked = sameOrigin && !!result.data.preselect_remember_me;
    if (providers.length === 0) { showError("No sign-in method is available"); $("submit").disabled = true; return; }
    if (providers.length > 1) {
      for (const provider of providers) {
        const button = H.el("button", { type: "button", textContent: provider.name, "data-key": JSON.stringify([provider.type, provider.id]) });
        button.addEventListener("click", () => { showError(""); start([provider.type, provider.id]); });
        $("providers").append(button);
      }
      $("providers").hidden = false;
    }
    if (resume && await resumeFlow()) return;
    start([providers[0].type, providers[0].id]);
  }
  boot();
})();

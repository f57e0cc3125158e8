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
        return { title: "Two-factor authentication", hint: "Enter the code from " + module + ".", button: "Verify" };
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
    showError(H.errorText(refused ? { base: "passkey_refused" } : step.errors));
    if (focus) { focus.focus(); if (focus.select) focus.select(); }
    else if (newStep) $("title").focus();
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

  async function boot() {
    if (!clientId || !redirectUri) { showError("This page needs client_id and redirect_uri"); $("submit").disabled = true; return; }
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
    start([providers[0].type, providers[0].id]);
  }
  boot();
})();

"use strict";
// hass-auth's onboarding page (/onboarding.html): creates the owner through
// POST /api/onboarding/users, then signs the new owner in. Opened from a client's login page
// (?client_id=&redirect_uri=&state=), the code goes back to that client when its redirect_uri is
// on the client's own origin; otherwise the page is its own client and lands on /profile, as the
// profile page's OAuth client (client_id = this origin + "/").
(function () {
  const H = window.HassAuth;
  const $ = (id) => document.getElementById(id);
  const PENDING = "hass-auth.pending-state"; // shared with app.js
  const query = new URLSearchParams(location.search);
  let usernameEdited = false;

  function showError(text, field) {
    $("error").textContent = text || "";
    for (const input of $("form").querySelectorAll("input")) input.removeAttribute("aria-invalid");
    if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
  }

  function showDone(text) {
    $("form").hidden = true;
    $("intro").hidden = true;
    $("done").hidden = false;
    $("title").textContent = "Already set up";
    $("status").textContent = text;
    $("signin").focus();
  }

  // The client the owner signs in to: the one that sent the browser here when its redirect URI
  // is on its own origin (the rule every client id allows), else this server's own pages.
  function client() {
    const clientId = query.get("client_id");
    const redirectUri = query.get("redirect_uri");
    if (clientId && redirectUri) {
      try {
        const id = new URL(clientId);
        const redirect = new URL(redirectUri);
        if ((id.protocol === "https:" || id.protocol === "http:") && id.origin === redirect.origin) {
          return { clientId, redirectUri, state: query.get("state") };
        }
      } catch (_) {
        // Not URLs: fall through to our own pages.
      }
    }
    const state = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    return { clientId: location.origin + "/", redirectUri: location.origin + "/profile", state, own: true };
  }

  // Lowercase letters, digits and underscores of the name, as a starting username.
  function usernameFrom(name) {
    return name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().trim().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
  }

  $("name").addEventListener("input", () => {
    if (!usernameEdited) $("username").value = usernameFrom($("name").value);
  });
  $("username").addEventListener("input", () => { usernameEdited = $("username").value !== ""; });

  $("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("name").value.trim();
    const username = $("username").value.trim();
    const password = $("password").value;
    if (!name) return showError("Enter your name.", $("name"));
    if (!username) return showError("Enter a username.", $("username"));
    if (!password) return showError("Enter a password.", $("password"));
    if (password !== $("password-confirm").value) return showError("The passwords do not match.", $("password-confirm"));
    showError("");
    const target = client();
    $("submit").disabled = true;
    $("status").textContent = "Creating the account…";
    let result;
    try {
      result = await H.fetchJson("POST", "/api/onboarding/users", JSON.stringify({
        client_id: target.clientId, name, username, password, language: navigator.language || "en",
      }), { "Content-Type": "application/json" });
    } catch (_) {
      result = null;
    }
    $("submit").disabled = false;
    $("status").textContent = "";
    if (!result) return showError("Cannot reach the server. Please try again.");
    const data = result.data || {};
    if (result.status === 403 || result.status === 404) return showDone("The owner account already exists: sign in instead.");
    if (!result.ok || !data.auth_code) {
      const field = data.code === "invalid_username" || /username/i.test(data.message || "") ? $("username") : null;
      return showError(data.message || ("The account could not be created (" + result.status + ")."), field);
    }
    $("status").textContent = "Account created. Signing you in…";
    if (target.own) sessionStorage.setItem(PENDING, target.state);
    const back = new URL(target.redirectUri);
    back.searchParams.set("code", data.auth_code);
    if (target.state !== null && target.state !== undefined) back.searchParams.set("state", target.state);
    back.searchParams.set("storeToken", "true");
    location.replace(back.toString());
  });

  async function boot() {
    let result = null;
    try { result = await H.fetchJson("GET", "/api/onboarding"); } catch (_) { result = null; }
    if (!result) { $("status").textContent = ""; showError("Cannot reach the server. Reload the page to try again."); return; }
    const userStep = Array.isArray(result.data) ? result.data.find((s) => s.step === "user") : null;
    if (!result.ok || !userStep || userStep.done) { showDone("The owner account already exists: sign in instead."); return; }
    $("form").hidden = false;
    $("name").focus();
  }
  boot();
})();

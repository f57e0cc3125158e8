"use strict";
// Shared by hass-auth's login page and profile page: texts, and forms rendered from a flow's
// data_schema. Everything is built with DOM calls; nothing from the server goes into innerHTML.
window.HassAuth = (function () {
  const labels = {
    username: "Username", password: "Password", code: "Code", pin: "PIN", user: "User",
    multi_factor_auth_module: "Two-factor authentication method",
    notify_service: "Notification service", target: "Target",
  };
  const messages = {
    invalid_auth: "Invalid username or password",
    invalid_code: "Invalid code, please try again",
    invalid_auth_module: "Invalid authentication method",
    login_expired: "Session expired, please log in again",
    too_many_retry: "Too many wrong codes, please log in again",
    mfa_locked: "Too many wrong codes were entered for this account, so codes are not checked for a while. Try again later.",
    mfa_setup_required: "This sign-in requires two-factor authentication that is not set up for your account yet. Ask your administrator.",
    not_allowed: "Your computer is not allowed",
    no_available_service: "No notification service is available",
    notify_service_not_exist: "The notification service does not exist",
    unknown_error: "Something went wrong",
  };

  function message(key) { return messages[key] || String(key); }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("aria-") || key.startsWith("data-")) node.setAttribute(key, value);
      else node[key] = value;
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  // One labelled control for one data_schema entry; ids are prefix + name.
  function field(spec, prefix, previous) {
    const id = prefix + spec.name;
    const label = el("label", { htmlFor: id, textContent: labels[spec.name] || spec.name });
    let input;
    if (spec.type === "select") {
      input = el("select");
      for (const option of spec.options || []) {
        const [value, text] = Array.isArray(option) ? option : [option, option];
        input.append(el("option", { value: value, textContent: text === null || text === undefined ? value : text }));
      }
    } else if (spec.type === "boolean") {
      input = el("input", { type: "checkbox", checked: !!spec.default });
      const row = el("label", { className: "check", htmlFor: id }, input, " " + (labels[spec.name] || spec.name));
      input.id = id; input.name = spec.name; input.dataset.type = spec.type;
      return el("div", {}, row);
    } else {
      input = el("input", { type: spec.type === "integer" || spec.type === "float" ? "number" : "text" });
      if (spec.name === "password") { input.type = "password"; input.autocomplete = "current-password"; }
      if (spec.name === "username") { input.autocomplete = "username"; input.autocapitalize = "none"; input.spellcheck = false; }
      if (spec.name === "code" || spec.name === "pin") { input.autocomplete = "one-time-code"; input.inputMode = "numeric"; }
    }
    input.id = id;
    input.name = spec.name;
    input.required = !!spec.required;
    input.dataset.type = spec.type || "string";
    if (previous && previous[spec.name] !== undefined) input.value = previous[spec.name];
    else if (spec.default !== undefined && spec.default !== null) input.value = spec.default;
    return el("div", {}, label, input);
  }

  // Renders `schema` into `container`; keeps `previous` values (by name) of fields that are not
  // secrets. Marks fields named in `errors` invalid. Returns the control to focus.
  function renderFields(container, schema, prefix, previous, errors, describedBy) {
    const kept = {};
    for (const [name, value] of Object.entries(previous || {})) {
      if (name !== "password" && name !== "code" && name !== "pin") kept[name] = value;
    }
    container.replaceChildren(...(schema || []).map((spec) => field(spec, prefix, kept)));
    let focus = null;
    for (const input of container.querySelectorAll("input, select")) {
      if (describedBy) input.setAttribute("aria-describedby", describedBy);
      const invalid = errors && errors[input.name];
      if (invalid) input.setAttribute("aria-invalid", "true");
      if (!focus && (invalid || (input.value === "" && input.type !== "checkbox"))) focus = input;
    }
    return focus || container.querySelector("input, select");
  }

  // The user input of a rendered form, typed by the schema (empty optional fields left out).
  function values(container) {
    const input = {};
    for (const element of container.querySelectorAll("input, select")) {
      const type = element.dataset.type;
      if (type === "boolean") { input[element.name] = element.checked; continue; }
      if (element.value === "" && !element.required) continue;
      if ((type === "integer" || type === "float") && element.value !== "") input[element.name] = Number(element.value);
      else input[element.name] = element.value;
    }
    return input;
  }

  // Text for a form's errors: `base` first, then per-field errors.
  function errorText(errors) {
    if (!errors) return "";
    const parts = [];
    if (errors.base) parts.push(message(errors.base));
    for (const [name, value] of Object.entries(errors)) {
      if (name !== "base") parts.push((labels[name] || name) + ": " + message(value));
    }
    return parts.join(". ");
  }

  // An <img> showing a server-made SVG (e.g. a TOTP QR code) through a data: URL, so that the
  // markup is never parsed into this page.
  function svgImage(svg, alt) {
    const bytes = new TextEncoder().encode(String(svg));
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return el("img", { src: "data:image/svg+xml;base64," + btoa(binary), alt: alt, width: 192, height: 192 });
  }

  // Shows a setup form's QR code, secret and otpauth link (placeholders qr_code, code, url) in
  // `box` (which holds elements with class qr, secret and otpauth). Returns whether it showed any.
  function renderSetupBox(box, placeholders, moduleName) {
    const qr = box.querySelector(".qr");
    const secret = box.querySelector(".secret");
    const link = box.querySelector(".otpauth");
    qr.replaceChildren();
    if (placeholders.qr_code) qr.append(svgImage(placeholders.qr_code, "QR code to add this account to " + moduleName));
    qr.hidden = !placeholders.qr_code;
    secret.textContent = placeholders.code || "";
    secret.parentElement.hidden = !placeholders.code;
    const url = placeholders.url || "";
    link.hidden = !/^otpauth:/i.test(url);
    if (link.hidden) link.removeAttribute("href"); else link.href = url;
    box.hidden = !(placeholders.qr_code || placeholders.code);
    return !box.hidden;
  }

  async function fetchJson(method, url, body, headers) {
    const response = await fetch(url, { method, credentials: "same-origin", body, headers: headers || {} });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    return { status: response.status, ok: response.ok, data };
  }

  return { labels, messages, message, el, renderFields, values, errorText, svgImage, renderSetupBox, fetchJson };
})();

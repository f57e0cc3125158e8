"use strict";
// Passkeys (WebAuthn) on hass-auth's pages. The server sends the options webauthn-rs made as
// JSON text (binary values base64url); the browser wants ArrayBuffers. This file converts both
// ways, and adds the texts of the passkey forms to the shared labels and messages.
window.HassAuth.webauthn = (function () {
  const H = window.HassAuth;
  H.labels.name = "Key name";
  Object.assign(H.messages, {
    invalid_key: "The key could not be registered, please try again",
    invalid_name: "Give the key a name (at most 64 characters)",
    key_registered: "This key is registered already",
    too_many_keys: "You cannot add more keys; remove one first",
    passkey_refused: "This passkey was not accepted. Please try again or use another key.",
    passkey_cancelled: "The passkey was not used. Please try again.",
    passkey_unsupported: "This browser cannot use passkeys (it needs a secure connection: https or localhost)",
  });

  function fromB64url(text) {
    const base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  function toB64url(buffer) {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function supported() { return !!(window.PublicKeyCredential && navigator.credentials && window.isSecureContext); }

  function unsupported() { const error = new Error(H.message("passkey_unsupported")); error.passkey = true; return error; }

  // Cancelled, timed out or refused by the authenticator: one message, no browser jargon.
  function cancelled(error) {
    const wrapped = new Error(H.message("passkey_cancelled"));
    wrapped.passkey = true;
    wrapped.cause = error;
    return wrapped;
  }

  // navigator.credentials.create with `optionsText` (a CreationChallengeResponse); the new
  // credential as JSON text.
  async function create(optionsText) {
    if (!supported()) throw unsupported();
    const options = JSON.parse(optionsText).publicKey;
    options.challenge = fromB64url(options.challenge);
    options.user.id = fromB64url(options.user.id);
    for (const credential of options.excludeCredentials || []) credential.id = fromB64url(credential.id);
    let credential;
    try { credential = await navigator.credentials.create({ publicKey: options }); } catch (error) { throw cancelled(error); }
    return JSON.stringify({
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toB64url(credential.response.attestationObject),
        clientDataJSON: toB64url(credential.response.clientDataJSON),
      },
      extensions: {},
    });
  }

  // navigator.credentials.get with `optionsText` (a RequestChallengeResponse); the assertion as
  // JSON text.
  async function get(optionsText) {
    if (!supported()) throw unsupported();
    const options = JSON.parse(optionsText).publicKey;
    options.challenge = fromB64url(options.challenge);
    for (const credential of options.allowCredentials || []) credential.id = fromB64url(credential.id);
    let credential;
    try { credential = await navigator.credentials.get({ publicKey: options }); } catch (error) { throw cancelled(error); }
    const response = credential.response;
    return JSON.stringify({
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toB64url(response.authenticatorData),
        clientDataJSON: toB64url(response.clientDataJSON),
        signature: toB64url(response.signature),
        userHandle: response.userHandle ? toB64url(response.userHandle) : null,
      },
      extensions: {},
    });
  }

  return { supported, create, get };
})();

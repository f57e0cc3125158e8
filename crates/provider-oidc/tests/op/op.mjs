// A real OpenID Provider (npm's oidc-provider) for provider-oidc's integration tests.
//
//   node op.mjs <port> <redirect_uri> <kid> [RS256|ES256]
//
// Listens on 127.0.0.1:<port> (0: a free port) with issuer http://127.0.0.1:<port>, one client `hass` (secret
// `hass-secret`, client_secret_basic, PKCE required), and a fresh signing key with id <kid>
// (restart with another kid to rotate keys). Users and their groups are in USERS below.
// Instead of a login page, `GET /test/sign-in?user=<name>&url=<authorization URL>` walks the
// authorization request as a browser would (cookies, redirects), signs <name> in with consent
// for everything asked, and answers the final redirect to redirect_uri as text. With a real
// browser, `GET /test/next-user?user=<name>` says who the next interaction signs in.
// Prints "listening <port>" when ready.
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import Provider from "oidc-provider";

const [wantedPort, redirectUri, kid, alg = "RS256"] = process.argv.slice(2);
const server = createServer();
await new Promise((resolve) => server.listen(Number(wantedPort), "127.0.0.1", resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

const USERS = {
  alice: { name: "Alice Admin", groups: ["admins", "family"] },
  bob: { name: "Bob", groups: ["family"] },
  carol: { name: "Carol", groups: ["guests"] },
  dave: { name: "Dave", groups: ["strangers"] },
  owner: { name: "Owner at the IdP", groups: ["admins"] },
};

const keyPair = alg === "ES256"
  ? generateKeyPairSync("ec", { namedCurve: "P-256" })
  : generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...keyPair.privateKey.export({ format: "jwk" }), kid, alg, use: "sig" };

const provider = new Provider(issuer, {
  clients: [{
    client_id: "hass",
    client_secret: "hass-secret",
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    id_token_signed_response_alg: alg,
  }],
  jwks: { keys: [jwk] },
  pkce: { required: () => true },
  claims: { openid: ["sub"], profile: ["name", "preferred_username"], groups: ["groups"] },
  scopes: ["openid", "profile", "groups"],
  conformIdTokenClaims: false,
  cookies: { keys: ["test-cookie-key"] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const user = USERS[sub];
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, preferred_username: sub, name: user.name, groups: user.groups };
      },
    };
  },
});

let nextUser = null;

// The interaction "page": signs `nextUser` in and grants everything that was asked for.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const grant = new provider.Grant({ accountId: nextUser, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  const result = { login: { accountId: nextUser }, consent: { grantId } };
  const location = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(location);
});

// For a real browser: who the next interaction signs in.
provider.use(async (ctx, next) => {
  if (ctx.path !== "/test/next-user") return next();
  nextUser = ctx.query.user;
  ctx.body = "ok";
});

// The test's "browser": follows the authorization request's redirects with cookies.
provider.use(async (ctx, next) => {
  if (ctx.path !== "/test/sign-in") return next();
  nextUser = ctx.query.user;
  let url = ctx.query.url;
  const cookies = new Map();
  for (let hop = 0; hop < 10; hop += 1) {
    if (url.startsWith(redirectUri)) { ctx.body = url; return; }
    const headers = { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") };
    const response = await fetch(url, { redirect: "manual", headers });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const at = pair.indexOf("=");
      cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    const location = response.headers.get("location");
    if (!location) {
      ctx.status = 500;
      ctx.body = `no redirect at ${url}: ${response.status} ${await response.text()}`;
      return;
    }
    url = new URL(location, url).toString();
  }
  ctx.status = 500;
  ctx.body = "too many redirects";
});

server.on("request", provider.callback());
console.log(`listening ${port}`);

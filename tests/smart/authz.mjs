// An authorization server for the SMART App Launch test, in front of a real FHIR server:
// oidc-provider (a certified OpenID provider, from npm) with SMART's scopes, the `launch` and
// `aud` parameters, PKCE required, and the launch context (`patient`, `encounter`,
// `need_patient_banner`) added to its token responses; and the FHIR server (sekmet-fhir) behind
// `/fhir`, which answers only requests with one of this provider's access tokens, for the
// patient that token was granted. Users sign in on oidc-provider's development pages (any name
// and password), then consent.
//
// Environment: AUTHZ_PORT, FHIR_UPSTREAM (sekmet's base), REDIRECT_URI (ehrqa's callback),
// LAUNCH_PATIENT, EHRQA_NODE_MODULES. GET /test/tokens lists the access tokens issued and the
// FHIR requests made with them, for the test to check where they went.
import http from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const { default: Provider } = await import(pathToFileURL(join(env("EHRQA_NODE_MODULES"), "oidc-provider/lib/index.js")));

const port = Number(env("AUTHZ_PORT"));
const upstream = env("FHIR_UPSTREAM").replace(/\/$/, "");
const redirect = env("REDIRECT_URI");
const patient = env("LAUNCH_PATIENT");
const issuer = `http://127.0.0.1:${port}`;
const fhirBase = `${issuer}/fhir`;

// The EHR's launch handles: what ehrqa is launched for.
const launches = new Map([["launch-ctx-1", { patient, encounter: "enc-1", need_patient_banner: false }]]);
const contextOfState = new Map();
const contextOfCode = new Map();
const patientOfToken = new Map();
const issued = [];
const fhirRequests = [];

const provider = new Provider(issuer, {
  clients: [{
    client_id: "ehrqa",
    token_endpoint_auth_method: "none",
    redirect_uris: [redirect],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  }],
  scopes: ["openid", "fhirUser", "launch", "launch/patient", "patient/*.rs", "patient/*.read"],
  claims: { openid: ["sub"], fhirUser: ["fhirUser"] },
  extraParams: ["launch", "aud"],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["smart-launch-test-only"] },
  ttl: { AccessToken: 3600, AuthorizationCode: 60, Grant: 3600, Interaction: 600, Session: 3600, IdToken: 3600 },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, fhirUser: `${fhirBase}/Practitioner/${sub}` }),
  }),
});

const oauthError = (ctx, error, description) => {
  ctx.status = 400;
  ctx.body = { error, error_description: description };
};

provider.use(async (ctx, next) => {
  // The authorization request: SMART's aud must name this FHIR server; an EHR launch must carry
  // a launch handle this EHR issued; the context it stands for follows the state to the code.
  if (ctx.path === "/auth" && ctx.method === "GET" && ctx.query.state) {
    const scopes = String(ctx.query.scope || "").split(" ");
    if (ctx.query.aud !== fhirBase) return oauthError(ctx, "invalid_request", "aud is not this FHIR server");
    if (ctx.query.code_challenge_method !== "S256") return oauthError(ctx, "invalid_request", "S256 PKCE required");
    let context = null;
    if (scopes.includes("launch")) {
      context = launches.get(String(ctx.query.launch));
      if (!context) return oauthError(ctx, "invalid_request", "unknown launch");
    } else if (scopes.includes("launch/patient")) {
      // Standalone: the user "picks" the one patient this EHR offers.
      context = { patient, need_patient_banner: true };
    }
    contextOfState.set(String(ctx.query.state), context);
  }
  await next();
  const location = ctx.response.get("location");
  if (location && location.startsWith(redirect)) {
    const u = new URL(location);
    const code = u.searchParams.get("code");
    if (code) contextOfCode.set(code, contextOfState.get(u.searchParams.get("state")));
  }
  if (ctx.path === "/token" && ctx.status === 200 && ctx.body && ctx.body.access_token) {
    const context = contextOfCode.get(ctx.oidc && ctx.oidc.params && ctx.oidc.params.code);
    if (context) {
      Object.assign(ctx.body, context);
      patientOfToken.set(ctx.body.access_token, context.patient);
    }
    issued.push(ctx.body.access_token);
  }
});

const smartConfiguration = {
  issuer,
  authorization_endpoint: `${issuer}/auth`,
  token_endpoint: `${issuer}/token`,
  token_endpoint_auth_methods_supported: ["none"],
  grant_types_supported: ["authorization_code"],
  scopes_supported: ["openid", "fhirUser", "launch", "launch/patient", "patient/*.rs", "patient/*.read"],
  response_types_supported: ["code"],
  code_challenge_methods_supported: ["S256"],
  capabilities: ["launch-ehr", "launch-standalone", "client-public", "context-ehr-patient", "context-ehr-encounter",
    "context-standalone-patient", "permission-v2", "sso-openid-connect"],
};

function send(res, status, body, type = "application/fhir+json") {
  res.writeHead(status, { "content-type": type });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
}

const outcome = (code, text) => ({ resourceType: "OperationOutcome", issue: [{ severity: "error", code, diagnostics: text }] });

/** The FHIR server behind the provider: its tokens only, each for its patient only. */
async function fhir(req, res) {
  const path = req.url.slice("/fhir".length);
  if (path.startsWith("/.well-known/smart-configuration")) return send(res, 200, smartConfiguration, "application/json");
  const header = req.headers.authorization || "";
  const token = header.startsWith("Bearer ") ? header.slice(7) : "";
  const granted = token ? await provider.AccessToken.find(token) : undefined;
  if (!granted) return send(res, 401, outcome("login", "no valid access token"));
  const scopes = String(granted.scope || "").split(" ");
  if (!scopes.some((s) => s === "patient/*.rs" || s === "patient/*.read")) return send(res, 403, outcome("forbidden", "no patient read scope"));
  const own = patientOfToken.get(token);
  const url = new URL(path, "http://x");
  const named = (url.pathname.match(/^\/Patient\/([^/]+)/) || [])[1] || url.searchParams.get("patient");
  if (named && named !== own) return send(res, 403, outcome("forbidden", "another patient"));
  fhirRequests.push({ path: url.pathname, token });
  const r = await fetch(upstream + path, { headers: { accept: "application/fhir+json" } });
  const body = (await r.text()).replaceAll(upstream, fhirBase);
  send(res, r.status, body, r.headers.get("content-type") || "application/fhir+json");
}

const callback = provider.callback();
http.createServer((req, res) => {
  if (req.url.startsWith("/fhir")) {
    fhir(req, res).catch((e) => send(res, 500, outcome("exception", String(e))));
  } else if (req.url === "/test/tokens") {
    send(res, 200, { issued, fhir_requests: fhirRequests }, "application/json");
  } else {
    callback(req, res);
  }
}).listen(port, "127.0.0.1", () => console.log(`authz on ${issuer}`));

// A real, independent OAuth 2.0 / OpenID Connect authorization server (panva/oidc-provider)
// for Plugboard's interop tests. See README.md for the environment it reads and what it
// prints. It listens on 127.0.0.1 only and keeps everything in memory.

import * as http from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

// stdout carries exactly one line, the endpoint JSON. oidc-provider prints its notices with
// console.info, so every other console output goes to stderr.
console.log = console.info = console.debug = (...args) => console.error(...args);

function env(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) {
      console.error(`server.mjs: the environment variable ${name} is required`);
      process.exit(2);
    }
    return fallback;
  }
  return value;
}

function positiveInt(name, fallback) {
  const raw = env(name, String(fallback));
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`server.mjs: ${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const port = Number(env('PORT', '0'));
const clientId = env('CLIENT_ID');
const clientSecret = env('CLIENT_SECRET');
const redirectUris = env('REDIRECT_URIS').split(',').map((uri) => uri.trim()).filter(Boolean);
const accessTokenTtl = positiveInt('ACCESS_TOKEN_TTL', 3600);
const refreshTokenTtl = positiveInt('REFRESH_TOKEN_TTL', 14 * 24 * 3600);
// `always`: every code exchange yields a refresh token, as many OAuth-only providers do.
// `offline_access`: oidc-provider's own rule, the OpenID Connect one (scope offline_access,
// which it only grants together with prompt=consent).
const refreshPolicy = env('REFRESH_TOKENS', 'always');
// Scopes beyond openid and offline_access; oidc-provider silently drops unknown ones.
const extraScopes = env('EXTRA_SCOPES', '').split(/[\s,]+/).filter(Boolean);

if (!['always', 'offline_access'].includes(refreshPolicy)) {
  console.error(`server.mjs: REFRESH_TOKENS must be "always" or "offline_access"`);
  process.exit(2);
}

// Exit with the test that started us: stdin closes when the parent goes away, however it died.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => process.exit(0));
}

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    // oidc-provider 8 accepts client_secret_basic as well for a client_secret_post client.
    token_endpoint_auth_method: 'client_secret_post',
  }],
  // Any login name is an account; its `sub` is the login name.
  async findAccount(_ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', ...extraScopes],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  async issueRefreshToken(_ctx, client, code) {
    if (!client.grantTypeAllowed('refresh_token')) return false;
    return refreshPolicy === 'always' || code.scopes.has('offline_access');
  },
  // Every refresh returns a new refresh token and consumes the presented one.
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTokenTtl,
    RefreshToken: refreshTokenTtl,
  },
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));

server.removeAllListeners('error');
server.on('request', provider.callback());

const response = await fetch(`${issuer}/.well-known/openid-configuration`);
if (!response.ok) {
  console.error(`server.mjs: discovery answered ${response.status}`);
  process.exit(1);
}
const discovery = await response.json();
process.stdout.write(`${JSON.stringify({
  issuer: discovery.issuer,
  authorization_endpoint: discovery.authorization_endpoint,
  token_endpoint: discovery.token_endpoint,
  revocation_endpoint: discovery.revocation_endpoint,
  userinfo_endpoint: discovery.userinfo_endpoint,
  introspection_endpoint: discovery.introspection_endpoint,
})}\n`);

// A real OpenID Connect provider on loopback for the single sign-on tests (tests/tests/sso.rs):
// the certified `oidc-provider` package with one confidential client and any account, plus two
// helpers a test drives with plain HTTP:
//
// - GET /test/drive?url=AUTHORIZATION_URL plays the browser: it follows the provider's
//   redirects with its cookies, signs in as the request's `login_hint` and consents, and answers
//   the URL the provider sends back to the client's redirect_uri (with `code` and `state`).
// - POST /test/tamper?mode=aud|expired makes the next token response carry an ID token signed
//   with the provider's own key whose audience is another client, or that expired an hour ago.
//
// An account's email is its login_hint; an email starting with "unverified" has
// email_verified false. Configured by OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI;
// prints "issuer http://127.0.0.1:PORT" once it listens.
import http from 'node:http';
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt } from 'jose';

const { OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI } = process.env;
if (!OIDC_CLIENT_ID || !OIDC_CLIENT_SECRET || !OIDC_REDIRECT_URI) throw new Error('OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and OIDC_REDIRECT_URI are needed');

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const KID = 'loopback-test-key';
const jwk = { ...(await exportJWK(privateKey)), kid: KID, alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: OIDC_CLIENT_ID,
    client_secret: OIDC_CLIENT_SECRET,
    redirect_uris: [OIDC_REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: ['loopback-test-cookie-key'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  pkce: { required: () => true },
  // The email and its verification in the ID token itself, as the big providers send them.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, email_verified: !id.startsWith('unverified'), name: `Test ${id.split('@')[0]}` };
      },
    };
  },
});
provider.proxy = false;

// The next token response's ID token, tampered with and signed again with the provider's key.
let tamper = null;
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && tamper && ctx.body && ctx.body.id_token) {
    const claims = decodeJwt(ctx.body.id_token);
    const now = Math.floor(Date.now() / 1000);
    if (tamper === 'aud') claims.aud = 'another-client';
    if (tamper === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
    ctx.body = { ...ctx.body, id_token: await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: KID, typ: 'JWT' }).sign(privateKey) };
    tamper = null;
  }
});

const callback = provider.callback();

// Sign-in and consent, without a page: the account is the authorization request's login_hint.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === 'login') {
    const accountId = details.params.login_hint;
    if (!accountId) { res.statusCode = 400; res.end('login_hint is needed'); return; }
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  grant.addOIDCScope('openid email profile');
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

// The browser's part: redirects with a cookie jar, until the client's redirect_uri.
async function drive(start) {
  const jar = new Map();
  let url = start;
  for (let hops = 0; hops < 20; hops++) {
    if (url.startsWith(OIDC_REDIRECT_URI)) return url;
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const r = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const line of r.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      jar.set(pair.slice(0, at).trim(), pair.slice(at + 1));
    }
    const location = r.headers.get('location');
    if (!location) throw new Error(`${url} answered ${r.status} without a redirect: ${await r.text()}`);
    url = new URL(location, url).toString();
  }
  throw new Error('too many redirects');
}

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/test/drive') {
      res.end(await drive(url.searchParams.get('url')));
    } else if (url.pathname === '/test/tamper' && req.method === 'POST') {
      tamper = url.searchParams.get('mode');
      res.end('ok');
    } else if (url.pathname.startsWith('/interaction/')) {
      await interaction(req, res);
    } else {
      callback(req, res);
    }
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e?.stack ?? e));
  }
});

console.log(`issuer ${issuer}`);

// A real OpenID Provider for the web page's tests: the npm package oidc-provider (certified),
// with one test client and its development login form (any account name, any password), on
// 127.0.0.1:PORT. Started by tests/web/test_oidc.py; never used outside the tests.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.NODE_MODULES_DIR, 'noop.js'));
const { default: Provider } = await import(require.resolve('oidc-provider'));

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'leerdossier-test',
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, preferred_username: id }; } };
  },
  claims: { openid: ['sub'], profile: ['preferred_username'] },
  scopes: ['openid', 'profile'],
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => false },
  cookies: { keys: ['test-cookie-key-0123456789'] },
});
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider on ${issuer}`));

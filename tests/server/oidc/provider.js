// A real OpenID provider (the certified oidc-provider) for the OAuth tests, on loopback.
//
//   node provider.js PORT
//
// It issues JWT access tokens with the client_credentials grant for whatever resource indicator
// (RFC 8707) the client asks for, so the tests can get tokens for this server and for another
// one. Two clients stand for two callers (a client_credentials token's subject is its client).
// It prints "ready <issuer>" once it listens, and stops when its stdin closes.
import Provider from "oidc-provider";

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ["client_credentials"],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: "client_secret_basic",
});

const provider = new Provider(issuer, {
  clients: [client("alice"), client("bob")],
  scopes: ["video:generate", "other"],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => ({
        scope: "video:generate other",
        audience: resourceIndicator,
        accessTokenTTL: 300,
        accessTokenFormat: "jwt",
      }),
    },
  },
});
provider.on("server_error", (ctx, error) => console.error("server_error", error));

const server = provider.listen(port, "127.0.0.1", () => console.log(`ready ${issuer}`));
process.stdin.on("end", () => server.close(() => process.exit(0)));
process.stdin.resume();

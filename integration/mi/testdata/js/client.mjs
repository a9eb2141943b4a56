// A program written against @azure/identity, unchanged: under `pctoken-helper mi exec`
// its ManagedIdentityCredential finds IDENTITY_ENDPOINT and IDENTITY_HEADER and asks
// the helper. It prints one JSON line per scope, then calls the test API with the
// token at the URL in the same place of MI_CHILD_APIS (trusting NODE_EXTRA_CA_CERTS).
import { ManagedIdentityCredential, DefaultAzureCredential } from "@azure/identity";

const scopes = (process.env.MI_CHILD_SCOPES || "").split(",").filter(Boolean);
const apis = (process.env.MI_CHILD_APIS || "").split(",");
const clientId = process.env.MI_CHILD_CLIENT_ID;
const kind = process.env.MI_CHILD_CRED || "mi";
const cred = kind === "dac"
  ? new DefaultAzureCredential(clientId ? { managedIdentityClientId: clientId } : {})
  : new ManagedIdentityCredential(clientId ? { clientId } : {});

let failed = false;
for (const [i, scope] of scopes.entries()) {
  try {
    const first = await cred.getToken(scope);
    const second = await cred.getToken(scope);
    const line = {
      cred: kind,
      scope,
      token: first.token,
      expires_on: Math.floor(first.expiresOnTimestamp / 1000),
      same: first.token === second.token,
    };
    if (apis[i]) {
      const resp = await fetch(apis[i], { headers: { Authorization: `Bearer ${first.token}` } });
      line.api_status = resp.status;
    }
    console.log(JSON.stringify(line));
  } catch (e) {
    failed = true;
    console.log(JSON.stringify({ scope, error: String(e && e.message || e) }));
  }
}
process.exit(failed ? 1 : 0);

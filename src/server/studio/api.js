// The REST API as the studio calls it: the token (sessionStorage, sent as a bearer header,
// never in a URL), errors as ApiError with the API's code and message, the token's scope.

export const state = { token: sessionStorage.getItem("batchscore.token") || "", who: null };

// What to do when the server refuses the token (the page signs out).
let refused = () => {};
export function whenRefused(f) {
  refused = f;
}

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Authorization: `Bearer ${state.token}`, ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 204) return null;
  const text = await r.text();
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch { v = null; }
  if (!r.ok) {
    const e = (v && v.error) || { code: String(r.status), message: text || r.statusText };
    if (r.status === 401 && path !== "/whoami") { refused("Your token was refused (wrong, revoked or expired). Sign in again."); }
    throw new ApiError(r.status, e.code, e.message);
  }
  return v;
}

export const can = (scope) => {
  const order = { read: 0, invoke: 1, admin: 2 };
  return state.who && order[state.who.scope] >= order[scope];
};

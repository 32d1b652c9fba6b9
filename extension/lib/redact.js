// Secrets out of URLs before they leave the browser: credentials in the authority and the
// values of secret-looking query (and fragment) parameters.

export const REDACTED = "[REDACTED]";

const SECRET_NAME = /(^|[^a-z])(token|secret|password|passwd|pwd|pass|api[-_]?key|apikey|key|auth|authorization|session|sessionid|sid|signature|sig|jwt|code|credentials?|private|otp)([^a-z]|$)/i;

/** Whether a query parameter's name looks like it holds a secret. */
export function isSecretName(name) {
  return SECRET_NAME.test(name) || /token|secret|passw|api_?key/i.test(name);
}

function redactParams(text) {
  return text
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      if (eq < 0) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name.replace(/\+/g, " "));
      } catch (err) {
        // a malformed escape: judge the raw name
      }
      return isSecretName(name) && eq < pair.length - 1 ? `${pair.slice(0, eq)}=${REDACTED}` : pair;
    })
    .join("&");
}

/** `url` with user:password and secret parameter values replaced; text that is not an
 * absolute URL is returned with only its parameters redacted. */
export function redactUrl(url) {
  const text = String(url);
  const hashAt = text.indexOf("#");
  const beforeHash = hashAt < 0 ? text : text.slice(0, hashAt);
  let hash = hashAt < 0 ? "" : text.slice(hashAt);
  const queryAt = beforeHash.indexOf("?");
  let base = queryAt < 0 ? beforeHash : beforeHash.slice(0, queryAt);
  const query = queryAt < 0 ? "" : `?${redactParams(beforeHash.slice(queryAt + 1))}`;
  base = base.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@?#]*@/i, `$1${REDACTED}@`);
  if (hash.includes("=")) hash = `#${redactParams(hash.slice(1))}`;
  return base + query + hash;
}

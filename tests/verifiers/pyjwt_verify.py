"""Verify dashboard tokens the way a site operator would, with PyJWT.

Reads {"jwks_uri", "issuer", "audience", "tokens": [...]} as JSON on stdin
(or "secret" instead of "jwks_uri" for a miniOrange site's HS256 tokens);
prints one JSON result per token: {"ok": true, "claims": {...}} or
{"ok": false, "error": "..."}. The key set is fetched over HTTP by
PyJWKClient for every token (no cache), like a site meeting a new kid.
"""
import json
import sys

import jwt
from jwt import PyJWKClient

req = json.load(sys.stdin)
out = []
for token in req["tokens"]:
    try:
        if "secret" in req:
            key, kid, algs = req["secret"], None, ["HS256"]
        else:
            client = PyJWKClient(req["jwks_uri"], cache_jwk_set=False, cache_keys=False)
            signing_key = client.get_signing_key_from_jwt(token)
            key, kid, algs = signing_key.key, signing_key.key_id, ["RS256"]
        claims = jwt.decode(
            token,
            key,
            algorithms=algs,
            audience=req["audience"],
            issuer=req["issuer"],
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
        header = jwt.get_unverified_header(token)
        out.append({"ok": True, "kid": kid, "header": header, "claims": claims})
    except Exception as e:  # every failure is a result, not a crash
        out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
print(json.dumps(out))

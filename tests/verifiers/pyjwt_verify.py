"""Verify dashboard tokens the way a site operator would, with PyJWT.

Reads {"jwks_uri", "issuer", "audience", "tokens": [...]} as JSON on stdin;
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
        client = PyJWKClient(req["jwks_uri"], cache_jwk_set=False, cache_keys=False)
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=req["audience"],
            issuer=req["issuer"],
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
        out.append({"ok": True, "kid": key.key_id, "claims": claims})
    except Exception as e:  # every failure is a result, not a crash
        out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
print(json.dumps(out))

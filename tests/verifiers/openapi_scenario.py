"""A client of the admin API driven by its OpenAPI document: every request
it sends and every answer it gets is validated against the document by
openapi-core (PyPI), as a generated client would rely on it.

    openapi_scenario.py BASE TOKEN grant SITE_URL EMAIL   -> prints the site's id
    openapi_scenario.py BASE TOKEN revoke SITE_ID EMAIL

BASE is the dashboard's origin; the document is read from BASE/api/v1/openapi.json.
"""
import json
import sys
import uuid

import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse


def main() -> None:
    base, token, step = sys.argv[1], sys.argv[2], sys.argv[3]
    spec = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
    api = OpenAPI.from_dict(spec)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(method: str, path: str, body=None, expect=200):
        headers = {"Idempotency-Key": str(uuid.uuid4())} if method != "GET" else {}
        res = session.request(method, f"{base}/api/v1{path}", json=body, headers=headers, timeout=10)
        req = RequestsOpenAPIRequest(res.request)
        api.validate_request(req)
        if res.status_code != expect:
            raise SystemExit(f"{method} {path}: {res.status_code} {res.text}")
        api.validate_response(req, RequestsOpenAPIResponse(res))
        return res.json()

    if step == "grant":
        url, email = sys.argv[4], sys.argv[5]
        site = call("POST", "/sites", {"name": "Scenario", "client": "Scenario Ltd", "url": url, "profile": "connector"}, 201)
        grant = call("PUT", f"/sites/{site['id']}/grants/{email}", {"role": "editor"})
        assert grant["role"] == "editor", grant
        listed = call("GET", f"/sites/{site['id']}/grants")
        assert [g["email"] for g in listed] == [email], listed
        print(site["id"])
    elif step == "revoke":
        site_id, email = sys.argv[4], sys.argv[5]
        call("DELETE", f"/sites/{site_id}/grants/{email}")
        got = call("GET", f"/sites/{site_id}")
        print(json.dumps({"site": got["url"]}))
    else:
        raise SystemExit(f"unknown step {step}")


if __name__ == "__main__":
    main()

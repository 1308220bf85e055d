"""Schemathesis hooks (loaded through schemathesis.toml's `hooks`): what a real client does
and schemathesis cannot derive from the spec, so the stateful phase reaches past
`complete` to the asset routes through the spec's links.

- The client's half of an upload: after each `201` from `POST /v1/uploads` with method
  `put` (up to 1 MiB), PUT that many bytes to the presigned URL with exactly the returned
  headers. `complete` can then verify and record an asset. (With a declared checksum the
  bytes cannot match it: `complete` answers `422 verification_failed`, documented too.)
- One `Idempotency-Key` per distinct request: schemathesis draws keys from a small pool
  (the spec's example above all), and a key reused on another request is `409
  invalid_state` by design, which would end most chains there. A valid key is replaced by
  a digest of the request and the drawn key, so an identical request keeps its key (a
  replay) and a different one gets another. Keys that break the rule are left alone (they
  test the `400`).
"""

import hashlib
import json
import re

import requests
import schemathesis

MAX_BYTES = 1 << 20
VALID_KEY = re.compile(r"[\x20-\x7E]{1,255}")


@schemathesis.hook
def map_case(context, case):
    headers = case.headers
    if not headers:
        return case
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        key = headers[name]
        if not isinstance(key, str) or not VALID_KEY.fullmatch(key):
            continue
        try:
            body = json.dumps(case.body, sort_keys=True, default=repr)
        except (TypeError, ValueError):
            body = repr(case.body)
        request = [case.method, case.formatted_path, json.dumps(case.query, sort_keys=True, default=repr), body, key]
        headers[name] = "st-" + hashlib.sha256("\n".join(map(str, request)).encode()).hexdigest()[:40]
    return case


@schemathesis.hook
def after_call(context, case, response):
    if case.operation.method.upper() != "POST" or case.operation.path != "/v1/uploads":
        return
    if response.status_code != 201:
        return
    try:
        intent = response.json()
        if intent.get("method") != "put":
            return
        headers = dict(intent["headers"])
        size = int(headers["content-length"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return  # not an intent: response_schema_conformance reports it
    if size > MAX_BYTES:
        return
    # The store's answer is not part of the broker's contract; `complete` checks the result.
    try:
        requests.put(intent["url"], headers=headers, data=b"r" * size, timeout=10)
    except requests.RequestException:
        pass


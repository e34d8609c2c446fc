"""Prepares a fresh crier for the fuzz run: the first user (setup), then an API key with every
scope, and one object of each kind the {id} routes need, made with that key. Prints shell
assignments (KEY, COOKIE, CSRF, and FUZZ_<KIND> exported for schemathesis's configuration) for
tests/fuzz/run.sh to eval.

Standard library only, so it runs before (and without) the fuzzer's virtualenv."""

import json
import sys
import urllib.request

BASE = sys.argv[1]

SCOPES = [
    "messages:send",
    "messages:read",
    "contacts:read",
    "contacts:write",
    "campaigns:read",
    "campaigns:write",
    "billing:read",
    "payments:write",
    "domains:read",
    "domains:write",
]


def call(method, path, body, headers=None):
    request = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response, json.load(response)


response, setup = call(
    "POST",
    "/v1/setup",
    {
        "email": "fuzz@example.com",
        "password": "correct horse battery staple",
        "name": "Fuzz",
        "workspace_name": "Fuzz",
    },
)
cookie = response.headers["Set-Cookie"].split(";", 1)[0]
csrf = setup["csrf_token"]
_, key = call(
    "POST",
    "/v1/api-keys",
    {"name": "fuzz", "mode": "live", "scopes": SCOPES},
    {"Cookie": cookie, "X-CSRF-Token": csrf},
)
bearer = {"Authorization": f"Bearer {key['key']}"}


def create(path, body):
    """The id of a new object, made with the API key, so the fuzzer reaches real objects."""
    _, made = call("POST", path, body, bearer)
    return made["id"]


ids = {
    "CONTACT": create(
        "/v1/contacts",
        {"name": "Ada", "phone": "+237677123456", "email": "ada@example.com"},
    ),
    "CONTACT_FIELD": create(
        "/v1/contact-fields", {"key": "tier", "label": "Tier", "type": "text"}
    ),
    "GROUP": create("/v1/groups", {"name": "Fuzz"}),
    "SEGMENT": create(
        "/v1/segments",
        {"name": "Fuzz", "rules": {"all": [{"field": "language", "op": "eq", "value": "fr"}]}},
    ),
    "CAMPAIGN": create(
        "/v1/campaigns",
        {"name": "Fuzz", "channel": "sms", "text": "Hello", "audience": {"all": True}},
    ),
    "SENDING_DOMAIN": create("/v1/sending-domains", {"domain": "fuzz.example"}),
}
for name, value in ids.items():
    print(f"export FUZZ_{name}='{value}'")
print(f"KEY='{key['key']}'")
print(f"COOKIE='{cookie}'")
print(f"CSRF='{csrf}'")

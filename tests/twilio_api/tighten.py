"""Make Twilio's published API v2010 description as strict as Twilio itself, for Prism.

The description (npm `@twilio-alpha/mcp`, twilio-oai/spec/json/twilio_api_v2010.json) is
generated for SDKs, so it leaves out rules Twilio's servers enforce. A mock that accepts
what Twilio would refuse proves nothing, so before Prism serves it we add them back:

- a form body whose schema has required fields is itself required (else an empty POST passes);
- list fields (StatusCallbackEvent, MediaUrl...) are sent as repeated keys, so say so;
- a message needs From or MessagingServiceSid, and a Body that is not empty, MediaUrl or
  ContentSid (Twilio's error 21602);
- a call needs Url, Twiml or ApplicationSid;
- Messages, Calls, Queues and call updates refuse fields they do not know (a typo such as
  `Bodyy` is silently dropped by Twilio and would hide a bug).

    python -m tests.twilio_api.tighten SOURCE.json TARGET.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "node_modules" / "@twilio-alpha" / "mcp" / "twilio-oai" / "spec" / "json" \
    / "twilio_api_v2010.json"
FORM = "application/x-www-form-urlencoded"
ACCOUNT = "/2010-04-01/Accounts/{AccountSid}/"
CLOSED = ("Messages.json", "Calls.json", "Queues.json", "Calls/{Sid}.json")


def tighten(spec: dict[str, Any]) -> dict[str, Any]:
    """Add Twilio's server-side rules to `spec` (changed in place, and returned)."""
    for item in spec["paths"].values():
        for verb in ("post", "put", "patch"):
            body = item.get(verb, {}).get("requestBody")
            if not body or FORM not in body.get("content", {}):
                continue
            media = body["content"][FORM]
            schema = media["schema"]
            arrays = [name for name, prop in schema.get("properties", {}).items()
                      if prop.get("type") == "array"]
            if arrays:
                media.setdefault("encoding", {}).update(
                    {name: {"style": "form", "explode": True} for name in arrays})
            if schema.get("required"):
                body["required"] = True

    def form(path: str) -> dict[str, Any]:
        return spec["paths"][ACCOUNT + path]["post"]["requestBody"]["content"][FORM]["schema"]

    def one_of_fields(*names: str) -> dict[str, Any]:
        return {"anyOf": [{"required": [name]} for name in names]}

    content = one_of_fields("Body", "MediaUrl", "ContentSid")
    content["anyOf"][0]["properties"] = {"Body": {"minLength": 1}}
    form("Messages.json")["allOf"] = [one_of_fields("From", "MessagingServiceSid"), content]
    form("Calls.json").update(one_of_fields("Url", "Twiml", "ApplicationSid"))
    for path in CLOSED:
        form(path)["additionalProperties"] = False
    return spec


def write_tightened(source: Path, target: Path) -> Path:
    spec = json.loads(source.read_text(encoding="utf-8"))
    target.write_text(json.dumps(tighten(spec)), encoding="utf-8")
    return target


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("twilio_api_v2010.strict.json")
    print(write_tightened(src, dst))

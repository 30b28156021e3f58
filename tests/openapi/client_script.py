"""What an integrator scripts with a client generated from Lifeline's /openapi.json by
openapi-python-client (issue 22): a check, a ticket, readings and the alarms.

Usage: python3 client_script.py BASE_URL CONTRACTOR_KEY OPERATOR_KEY, with the generated
package `lifeline_client` on PYTHONPATH. Prints one JSON line of what it got, which
tests/openapi.rs compares with the server's own answers. Every call goes through the
generated modules, named by the document's operation ids.
"""
import datetime as dt
import json
import sys
import types
import typing

from lifeline_client import AuthenticatedClient, Client
from lifeline_client.api.excavation import (
    excavation_check,
    get_ticket,
    list_tickets,
    submit_ticket,
)
from lifeline_client.api.risk import ingest_readings, list_alarms
from lifeline_client.api.service import health

base, contractor_key, operator_key = sys.argv[1:4]
anonymous = Client(base_url=base, raise_on_unexpected_status=True)
contractor = AuthenticatedClient(base_url=base, token=contractor_key)
operator = AuthenticatedClient(base_url=base, token=operator_key)


def body(endpoint, data):
    """The request body as the generated model the endpoint's signature names."""
    hint = typing.get_type_hints(endpoint.sync_detailed)["body"]
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    for t in typing.get_args(hint) if union else (hint,):
        if typing.get_origin(t) is list:
            (item,) = typing.get_args(t)
            if hasattr(item, "from_dict"):
                return [item.from_dict(d) for d in data]
        if hasattr(t, "from_dict"):
            return t.from_dict(data)
    return data


def call(endpoint, client, expect, **kwargs):
    """Calls the endpoint; returns the JSON it answered, after checking the status."""
    r = endpoint.sync_detailed(client=client, **kwargs)
    if r.status_code != expect:
        sys.exit(f"{endpoint.__name__}: {r.status_code} {r.content!r}")
    return json.loads(r.content)


# The service's clock (a test server may run years ahead of the machine's).
now = dt.datetime.fromisoformat(call(health, anonymous, 200)["time"].replace("Z", "+00:00"))
today = now.date()
dig = {
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[106.5003, 29.4999], [106.5006, 29.4999], [106.5006, 29.5004],
                         [106.5003, 29.5004], [106.5003, 29.4999]]],
    },
    "top_depth_m": 0.0,
    "bottom_depth_m": 2.5,
    "method": "mechanical",
    "work_type": "water service connection",
    "start_date": today.isoformat(),
    "end_date": (today + dt.timedelta(days=3)).isoformat(),
}

check = call(excavation_check, contractor, 200, body=body(excavation_check, dig))

ticket_request = dict(dig, requester={"name": "王工", "company": "渝建三公司", "phone": "138 0000 0000"})
ticket = call(submit_ticket, contractor, 201, body=body(submit_ticket, ticket_request))
read = call(get_ticket, contractor, 200, id=ticket["id"])
listed = call(list_tickets, contractor, 200)

stamp = lambda secs: (now - dt.timedelta(seconds=secs)).isoformat().replace("+00:00", "Z")
readings = [
    {"sensor_id": 1, "time": stamp(120), "value": 25.0},
    {"sensor_id": 1, "time": stamp(100), "value": 26.0},
]
ingested = call(ingest_readings, operator, 200, body=body(ingest_readings, readings))
alarms = call(list_alarms, operator, 200, sensor_id=1)

print(json.dumps({
    "check_request": dig,
    "check_conflicts": len(check["conflicts"]),
    "ticket_id": ticket["id"],
    "ticket_state": read["state"],
    "listed_ticket_ids": [t["id"] for t in listed["tickets"]],
    "stored_readings": ingested["stored"],
    "alarm_ids": [a["id"] for a in alarms["alarms"]],
}, ensure_ascii=False))

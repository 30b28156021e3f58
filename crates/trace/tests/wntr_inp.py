"""The oracle for Lifeline's EPANET reader (issue 15): what WNTR reads from an .inp file
that ships inside the wntr package.

Usage: python3 wntr_inp.py NETWORK
Prints one JSON document: the file's path, and WNTR's nodes (type and coordinates) and
links (type, end nodes, initial status, check valve, valve type, vertices), by name, as
`wntr.network.WaterNetworkModel(path)` reads them.
"""
import json
import os
import sys

import wntr

name = sys.argv[1]
path = os.path.join(os.path.dirname(wntr.__file__), "library", "networks", f"{name}.inp")
wn = wntr.network.WaterNetworkModel(path)


def link(lk):
    return {
        "type": lk.link_type,
        "start": lk.start_node_name,
        "end": lk.end_node_name,
        "closed": lk.initial_status == wntr.network.LinkStatus.Closed,
        "check_valve": bool(getattr(lk, "check_valve", False)),
        "valve_type": getattr(lk, "valve_type", None),
        "vertices": [list(v) for v in lk.vertices],
    }


out = {
    "path": path,
    "nodes": {
        nm: {"type": nd.node_type, "coordinates": list(nd.coordinates) if nd.coordinates else None}
        for nm, nd in wn.nodes()
    },
    "links": {nm: link(lk) for nm, lk in wn.links()},
}
print(json.dumps(out))

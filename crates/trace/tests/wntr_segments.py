"""The oracle for Lifeline's valve segments (issue 15): WNTR's valve segments on
networks that ship inside the wntr package, for a frozen valve layer.

Usage: python3 wntr_segments.py NETWORK LAYER.csv BROKEN
Prints one JSON document: the network (nodes with their role, links with their ends, the
valve layer read from LAYER.csv, a fixture written by freeze_valve_layers.py with columns
valve, link, node), WNTR's `valve_segments` for that layer, and the segments again with the
valves listed in BROKEN (comma-separated indices into the layer, or '-') dropped from the
layer, as a broken valve is. Node and link names become integer ids by their order in the
model; a valve's id is its `valve` column. The names are printed too (`node_names`,
`link_names`), for tests that read the .inp themselves.
"""
import json
import os
import sys

import pandas as pd
import wntr

name, layer_csv, broken = sys.argv[1], sys.argv[2], sys.argv[3]
path = os.path.join(os.path.dirname(wntr.__file__), "library", "networks", f"{name}.inp")
wn = wntr.network.WaterNetworkModel(path)
G = wn.to_graph()
node_names = list(wn.node_name_list)
link_names = list(wn.link_name_list)
node_id = {nm: i for i, nm in enumerate(node_names)}
link_id = {nm: i for i, nm in enumerate(link_names)}
# Names stay strings: Net3's are digits, which pandas would otherwise read as numbers.
layer = pd.read_csv(layer_csv, dtype={"link": str, "node": str}).set_index("valve")
dropped = [] if broken == "-" else [int(i) for i in broken.split(",")]


def segments(valves):
    node_seg, link_seg, _ = wntr.metrics.topographic.valve_segments(G, valves)
    return {
        "nodes": [int(node_seg[nm]) for nm in node_names],
        "links": [int(link_seg[nm]) for nm in link_names],
    }


out = {
    "node_names": node_names,
    "link_names": link_names,
    "nodes": [
        {"id": node_id[nm], "source": wn.get_node(nm).node_type in ("Reservoir", "Tank")}
        for nm in node_names
    ],
    "links": [
        {"id": link_id[nm], "from": node_id[wn.get_link(nm).start_node_name],
         "to": node_id[wn.get_link(nm).end_node_name]}
        for nm in link_names
    ],
    "valves": [
        {"id": int(i), "link": link_id[row["link"]], "node": node_id[row["node"]]}
        for i, row in layer.iterrows()
    ],
    "segments": segments(layer),
    "broken": dropped,
    "segments_broken": segments(layer.drop(index=[layer.index[i] for i in dropped])),
}
print(json.dumps(out))

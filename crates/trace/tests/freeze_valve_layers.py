"""Freezes the WNTR valve layers the trace tests use into CSV fixtures (issue 15).

Usage: python3 crates/trace/tests/freeze_valve_layers.py
Writes tests/fixtures/valves_<NETWORK>_seed<SEED>_n<N>.csv for every layer below, each
`wntr.network.generate_valve_layer(wn, 'strategic', N, SEED)` on a network that ships
inside the wntr package. Columns: `valve` (the layer's index), `link` and `node` (WNTR's
names). The tests read these files and hand them to the oracle (wntr_segments.py), so a
new WNTR release that places its random valves differently cannot change what is tested.
Rerun this only to change the layers on purpose, and commit the diff.
"""
import csv
import os

import wntr

LAYERS = [("Net3", 7, 2), ("Net3", 8, 1), ("ky10", 7, 2), ("Net6", 7, 2)]
HERE = os.path.dirname(os.path.abspath(__file__))

for name, seed, n in LAYERS:
    path = os.path.join(os.path.dirname(wntr.__file__), "library", "networks", f"{name}.inp")
    wn = wntr.network.WaterNetworkModel(path)
    layer = wntr.network.generate_valve_layer(wn, "strategic", n, seed)
    out = os.path.join(HERE, "fixtures", f"valves_{name}_seed{seed}_n{n}.csv")
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["valve", "link", "node"])
        for i, row in layer.iterrows():
            w.writerow([int(i), row["link"], row["node"]])
    print(f"{out}: {len(layer)} valves")

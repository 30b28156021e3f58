"""Drives OWSLib's OGC API - Features client against a running server and prints what it
saw as JSON (collections, conformance, item ids read page by page through the `next`
links with limit=2, a CQL2 filter in text and in JSON through `filter=`, and what `cql=`
— which OWSLib POSTs — answers). Usage: python3 owslib_client.py http://127.0.0.1:PORT/ogc"""
import json
import sys

import requests
from owslib.ogcapi.features import Features


def main() -> None:
    url = sys.argv[1]
    api = Features(url)
    collections = [c["id"] for c in api.collections()["collections"]]
    conformance = api.conformance()["conformsTo"]
    page = api.collection_items("pipelines", limit=2)
    ids = [f["id"] for f in page["features"]]
    pages = 1
    while True:
        nxt = [link["href"] for link in page.get("links", []) if link.get("rel") == "next"]
        if not nxt:
            break
        page = requests.get(nxt[0], headers={"Accept": "application/geo+json"}, timeout=30).json()
        ids += [f["id"] for f in page["features"]]
        pages += 1
    queryables = api.collection_queryables("pipelines")
    text = api.collection_items("pipelines", filter="kind = 'gas'")
    as_json = api.collection_items(
        "pipelines",
        filter=json.dumps({"op": "=", "args": [{"property": "kind"}, "gas"]}),
        **{"filter-lang": "cql2-json"},
    )
    try:
        api.collection_items("pipelines", cql={"op": "=", "args": [{"property": "kind"}, "gas"]})
        post = {"status": 200}
    except RuntimeError:
        # OWSLib raises on any non-2xx status: read what the server said.
        r = requests.post(f"{url}/collections/pipelines/items", json={"op": "="}, timeout=30)
        post = {"status": r.status_code, "body": r.json(), "allow": r.headers.get("allow")}
    print(json.dumps({"collections": collections, "conformance": conformance,
                      "paged_ids": ids, "pages": pages,
                      "queryables": sorted(queryables.get("properties", {}).keys()),
                      "gas_text": [f["id"] for f in text["features"]],
                      "gas_json": [f["id"] for f in as_json["features"]],
                      "cql_post": post}))


if __name__ == "__main__":
    main()

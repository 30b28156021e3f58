"""Drives OWSLib's OGC API - Features client against a running server and prints what it
saw as JSON (collections, conformance, and item ids read page by page through the `next`
links with limit=2). Usage: python3 owslib_client.py http://127.0.0.1:PORT/ogc"""
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
    print(json.dumps({"collections": collections, "conformance": conformance,
                      "paged_ids": ids, "pages": pages,
                      "queryables": sorted(queryables.get("properties", {}).keys())}))


if __name__ == "__main__":
    main()

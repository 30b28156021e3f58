"""Runs the `ogctests` conformance suite (OGC API - Features Part 1: Core, GeoJSON, OpenAPI)
against a running server and exits with pytest's real exit code (the `ogctests` CLI always
exits 0). Usage: python3 run_ogctests.py http://127.0.0.1:PORT/ogc [junit.xml]"""
import sys

import httpx
from ogctests.main import run_ogctests


def main() -> int:
    url = sys.argv[1]
    flags = ["-q", "-p", "no:cacheprovider", "-W", "ignore"]
    if len(sys.argv) > 2:
        flags.append(f"--junit-xml={sys.argv[2]}")
    # `run_ogctests` always installs its client override, so it must be given a client (with
    # None every test errors out).
    with httpx.Client(base_url=url, timeout=60) as client:
        return int(
            run_ogctests("features/core", instance_url=url, flags=flags, test_client=client)
        )


if __name__ == "__main__":
    sys.exit(main())

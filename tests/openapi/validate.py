"""Validates OpenAPI documents with openapi-spec-validator (issue 22).

Usage: python3 validate.py FILE...  Each FILE is a JSON OpenAPI 3.0 or 3.1 document; the
version is read from the document. Exits 1 naming the first error of each invalid file.
"""
import json
import sys

from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

failed = False
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    try:
        validate(doc)
        print(f"{path}: valid OpenAPI {doc.get('openapi')}")
    except OpenAPIValidationError as e:
        failed = True
        print(f"{path}: INVALID: {e.message} at {list(e.path)}", file=sys.stderr)
sys.exit(1 if failed else 0)

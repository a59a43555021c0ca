"""Runs schemathesis against a live ingress, in a process of its own.

Called by test_ingress_openapi.py. Not in the pytest process: there,
pytest's assertion rewriting and other threads made CPython 3.11's gh-106905
("AST constructor recursion depth mismatch") fail the run spuriously.
Prints {"examples": n, "seen": {status: count}}; exits non-zero on a failed check.
"""

import json
import sys

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance


def main(document: str, url: str, api_key: str, max_examples: int) -> None:
    operation = schemathesis.openapi.from_path(document).get_all_operations().__next__().ok()
    examples = list(operation.get_strategies_from_examples())
    seen: dict[int, int] = {}

    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(*examples, operation.as_strategy()))
    def run(case):
        response = case.call(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(
            response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
        )

    run()
    print(json.dumps({"examples": len(examples), "seen": seen}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))

"""Loaded by schemathesis (SCHEMATHESIS_HOOKS, set by tests/fuzz/run.sh) before the run.

Hypothesis describes its strategies by reading the source of their lambdas with `ast.parse`; on
CPython 3.11 that call can fail deep in a draw with "SystemError: AST constructor recursion depth
mismatch" (a CPython bug, fixed in later versions), which schemathesis reports as an error of
the operation although nothing was sent. The description is only text for messages, so on that
failure a plain one is used instead.
"""

from hypothesis.internal import lambda_sources

_describe = lambda_sources.lambda_description


def _lambda_description(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda: <source unavailable>"


lambda_sources.lambda_description = _lambda_description

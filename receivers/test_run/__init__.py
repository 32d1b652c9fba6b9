"""`gasoline test`: a test command run as one trace, its test cases as spans."""

__all__ = ["TESTS_PATH"]

TESTS_PATH = "/v1/tests"

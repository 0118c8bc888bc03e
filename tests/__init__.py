"""The test suite; see conftest.py for the fixtures."""

"""mlplat's checkov checks; checkov loads only folders that hold an `__init__.py`."""

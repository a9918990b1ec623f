"""Helpers shared by test folders (fakes of external services); never a test module itself."""

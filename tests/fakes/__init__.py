"""Test doubles shared by the agent tests and the loop tests: a fake Messages API and fake CLIs."""

"""Where untrusted commands run: processes, the sandbox environment, protected-path guards."""

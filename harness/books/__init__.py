"""ralph's records: the ledger (.ralph/state.json), progress.txt, and git."""

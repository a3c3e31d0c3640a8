"""ralph's git records through GitPython: repository access (repo.py), trees (trees.py), commits
(commits.py) and refs (refs.py)."""

"""What a person reads: the status board, `ralph show`, the report page, the live view."""
